import Crypto
import Foundation

/// How a ``ChatRequest`` becomes a ``RequestKey``.
public struct RequestKeyOptions: Sendable, Hashable {
    /// The version of your prompts and templates; part of the key (in the hash and in
    /// ``RequestKey/cacheKey``). Bump it when you ship a new system prompt or template so answers
    /// produced under the old one retire instead of being served. Default `"v1"`.
    public var promptVersion: String
    /// Opt-in text normalisation for the key (default off). When on, each *text* content part is
    /// converted to Unicode NFC, trimmed, and every run of whitespace — including newlines — is
    /// collapsed to one space before hashing, so `"Hi  there\n"` and `"Hi there"` (and a
    /// precomposed `é` and `e` + U+0301) share one answer. The request sent upstream is never
    /// altered: the cached answer is the one produced for whichever variant missed first.
    /// Names, tool calls, tools and other parameters are not normalised.
    public var normalizeText: Bool
    /// Request fields that are sent upstream but are **not** part of the key, because they cannot
    /// change the answer: bookkeeping (`metadata`, `store`, `service_tier`, `prompt_cache_key`,
    /// `safety_identifier`) and per-request ids clients add (`request_id`, `id`). Every other field
    /// not modelled by ``ChatRequest`` (``ChatRequest/extra``) *is* keyed, since it may change the
    /// answer (`reasoning_effort`, `verbosity`, `logprobs`, a provider's own parameter...). `user`
    /// is never keyed.
    public var unkeyedFields: Set<String>

    /// The fields ``unkeyedFields`` holds by default.
    public static let defaultUnkeyedFields: Set<String> = [
        "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier", "request_id", "id",
    ]

    /// Creates options.
    public init(promptVersion: String = "v1", normalizeText: Bool = false, unkeyedFields: Set<String> = RequestKeyOptions.defaultUnkeyedFields) {
        self.promptVersion = promptVersion
        self.normalizeText = normalizeText
        self.unkeyedFields = unkeyedFields
    }

    /// The ``normalizeText`` transformation: NFC, trim, collapse whitespace runs to one space.
    static func normalized(_ text: String) -> String {
        let composed = text.precomposedStringWithCanonicalMapping
        var result = ""
        result.reserveCapacity(composed.utf8.count)
        var pendingSpace = false
        for character in composed {
            if character.isWhitespace {
                pendingSpace = !result.isEmpty
            } else {
                if pendingSpace {
                    result.append(" ")
                    pendingSpace = false
                }
                result.append(character)
            }
        }
        return result
    }
}

/// The cache key of a chat request: `<model>:<promptVersion>:<hash>`.
///
/// - **No prompt text in the key.** Only the model name, the prompt version and a SHA-256 of the
///   request's canonical JSON appear, so keys can be logged, used as metric labels or shown in
///   Redis tooling without leaking conversations.
/// - **Escaping.** The model and version are validated for use in a key: the characters `{`, `}`
///   and `|` (which StampedeCache uses for the Redis Cluster hash tag and its suffixes), `%`, any
///   whitespace and control characters are percent-escaped as their UTF-8 bytes (`%7B`, `%20`, …);
///   the version also escapes `:`. So a key never contains whitespace, always has its 64-hex hash
///   as the last `:` segment and the version as the one before. (StampedeCache escapes `{`, `}`,
///   `|` and `%` again on its own; that is harmless.) Model names may contain `:` (fine-tuned
///   models do). Escaping can never make two requests share a key: the hash covers the raw model
///   and version.
/// - The full Redis key is built by StampedeCache:
///   `<namespace>:<generation>:<model>:<version>:<hash>`.
public struct RequestKey: Sendable, Hashable, CustomStringConvertible {
    /// The model name, as in the request (unescaped).
    public let model: String
    /// The prompt version from ``RequestKeyOptions/promptVersion`` (unescaped).
    public let promptVersion: String
    /// Lowercase hex SHA-256 of ``ChatRequest/canonicalJSON(options:)``.
    public let hash: String

    /// Creates a key from its parts; normally you get one from ``ChatRequest/cacheKey(options:)``.
    public init(model: String, promptVersion: String, hash: String) {
        self.model = model
        self.promptVersion = promptVersion
        self.hash = hash
    }

    /// The key handed to StampedeCache: `<escaped model>:<escaped version>:<hash>`.
    public var cacheKey: String {
        "\(Self.escape(model, escapingColon: false)):\(Self.escape(promptVersion, escapingColon: true)):\(hash)"
    }

    /// The same as ``cacheKey`` (contains no prompt text, safe to log).
    public var description: String { cacheKey }

    /// Percent-escapes `%`, `{`, `}`, `|`, whitespace and control characters (and `:` if asked).
    static func escape(_ text: String, escapingColon: Bool) -> String {
        func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
            switch scalar {
            case "%", "{", "}", "|": return true
            case ":": return escapingColon
            default: return scalar.properties.isWhitespace || scalar.properties.generalCategory == .control
            }
        }
        // Printable ASCII other than the escaped characters needs no Unicode property lookups.
        let plainASCII = text.utf8.allSatisfy { byte in
            (0x21...0x7E).contains(byte) && byte != UInt8(ascii: "%") && byte != UInt8(ascii: "{") && byte != UInt8(ascii: "}")
                && byte != UInt8(ascii: "|") && (!escapingColon || byte != UInt8(ascii: ":"))
        }
        if plainASCII { return text }
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) {
                for byte in String(Character(scalar)).utf8 {
                    bytes.append(UInt8(ascii: "%"))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0x0F)])
                }
            } else {
                bytes.append(contentsOf: String(Character(scalar)).utf8)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ChatRequest {
    /// The exact text hashed into the cache key (UTF-8), via ``JSONValue/canonicalJSON()``.
    ///
    /// An object with `model`, `messages` (each with `role`, `content` as an array of parts,
    /// and `name`, `tool_call_id`, `tool_calls` when set), every answer-changing parameter that is
    /// set (the typed ones and ``extra`` minus ``RequestKeyOptions/unkeyedFields``), and
    /// `prompt_version`. It excludes `user` and `stream`.
    ///
    /// Consequences: key order and whitespace of the original JSON don't matter; numbers are
    /// normalised (`0.7`, `0.70` and `7e-1` are equal, so are `1` and `1.0`); a string content
    /// equals a single text part; an unset parameter differs from one set to the provider's
    /// default. With ``RequestKeyOptions/normalizeText`` text parts are normalised first.
    ///
    /// This string contains the prompt: don't log it. Log ``RequestKey`` instead.
    public func canonicalJSON(options: RequestKeyOptions = .init()) -> String {
        keyDocument(options: options).canonicalJSON()
    }

    /// The cache key: the model, the prompt version and the SHA-256 of
    /// ``canonicalJSON(options:)``. See ``RequestKey`` for its format and escaping.
    public func cacheKey(options: RequestKeyOptions = .init()) -> RequestKey {
        var canonical: [UInt8] = []
        canonical.reserveCapacity(512)
        keyDocument(options: options).writeCanonical(into: &canonical)
        return RequestKey(model: model, promptVersion: options.promptVersion, hash: SHA256.hex(canonical))
    }

    func keyDocument(options: RequestKeyOptions) -> JSONValue {
        var object = answerParameters()
        for name in options.unkeyedFields where extra[name] != nil && !Self.reservedParameterNames.contains(name) {
            object[name] = nil
        }
        object["messages"] = .array(messages.map { $0.keyJSON(normalizeText: options.normalizeText) })
        object["prompt_version"] = .string(options.promptVersion)
        return .object(object)
    }
}
