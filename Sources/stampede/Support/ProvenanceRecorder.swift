import Configuration
import Synchronization

/// swift-configuration access reporter that records, for each setting read, which provider gave
/// its value (the first one, in precedence order) and any value a provider had but could not give
/// in the type asked for; ``Settings`` turns that into `config check`'s provenance column and
/// into errors that name the flag, variable or file entry.
final class ProvenanceRecorder: AccessReporter {
    /// Where a value came from: the provider's position, and its encoded key (e.g. the variable).
    struct Origin {
        var provider: Int
        var encodedKey: String

        /// `flag`, `env NAME`, or the file's path.
        func source(fileName: String) -> String {
            switch provider {
            case 0: return "flag"
            case 1: return "env \(encodedKey)"
            default: return fileName
            }
        }

        /// How error messages name the value: `--fresh-for`, `STAMPEDE_FRESH_FOR`, `'fresh_for' in FILE`.
        func name(key: String, fileName: String) -> String {
            switch provider {
            case 0: return "--" + key.replacingOccurrences(of: "_", with: "-")
            case 1: return encodedKey
            default: return "'\(key)' in \(fileName)"
            }
        }
    }

    /// What was recorded about one key.
    struct Provenance {
        var origin: Origin?
        var failure: String?
    }

    private let fileName: String
    private let variables: [String: String]
    private let recorded = Mutex<[String: Provenance]>([:])

    /// - Parameters:
    ///   - fileName: the config file's path (the third provider), for messages.
    ///   - variables: each setting's environment variable, for messages.
    init(fileName: String, variables: [String: String]) {
        self.fileName = fileName
        self.variables = variables
    }

    func report(_ event: AccessEvent) {
        let key = event.metadata.key.components.joined(separator: ".")
        var provenance = Provenance()
        for (index, result) in event.providerResults.enumerated() {
            switch result.result {
            case .success(let lookup):
                if lookup.value != nil, provenance.origin == nil { provenance.origin = Origin(provider: index, encodedKey: lookup.encodedKey) }
            case .failure:
                if provenance.failure == nil {
                    let origin = Origin(provider: index, encodedKey: variables[key] ?? key)
                    provenance.failure = Self.refusal(origin.name(key: key, fileName: fileName), event.metadata.valueType)
                }
            }
        }
        if provenance.failure == nil, event.conversionError != nil, let origin = provenance.origin {
            provenance.failure = Self.refusal(origin.name(key: key, fileName: fileName), event.metadata.valueType)
        }
        recorded.withLock { $0[key] = provenance }
    }

    private static func refusal(_ name: String, _ type: ConfigType) -> String {
        switch type {
        case .double: return "\(name) must be a number"
        case .int: return "\(name) must be a whole number"
        default: return "\(name) must be a \(type)"
        }
    }

    /// What the last read of `key` found.
    func provenance(of key: String) -> Provenance {
        recorded.withLock { $0[key] ?? Provenance() }
    }
}
