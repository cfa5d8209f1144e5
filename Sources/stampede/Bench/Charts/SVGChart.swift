import Foundation

/// A horizontal grouped bar chart rendered as SVG, drawn by the tool itself (no external service).
struct BarChart {
    struct Bar {
        var series: Int
        var value: Double
        /// Text after the bar (defaults to the value).
        var note: String?
    }

    struct Group {
        var label: String
        var bars: [Bar]
    }

    var title: String
    var unit: String
    var logScale: Bool
    var series: [String]
    var groups: [Group]

    static let palette = ["#1b7f5f", "#c2571a", "#5b5ea6", "#9b2335", "#3a7ca5", "#8a6d3b"]

    private static let barHeight = 14.0
    private static let groupGap = 12.0

    /// The panel's SVG elements with its top-left corner at (`x`, `y`), and the height it takes.
    func render(x: Double, y: Double, width: Double) -> (svg: String, height: Double) {
        var out: [String] = []
        out.append(##"<text x="\##(x)" y="\##(y + 14)" font-size="14" font-weight="bold">\##(escaped(title))</text>"##)
        var cursor = y + 26
        let labelWidth = max(110, Double(groups.map(\.label.count).max() ?? 10) * 6.8 + 14)
        let plotX = x + labelWidth
        // Room on the right for the longest label after a bar (about 6.3 px a character at 11 px).
        let longestNote = groups.flatMap { $0.bars.map { ($0.note ?? format($0.value)).count } }.max() ?? 4
        let plotWidth = max(120, width - labelWidth - Double(longestNote) * 6.3 - 12)
        let values = groups.flatMap { $0.bars.map(\.value) }
        let maxValue = max(values.max() ?? 1, logScale ? 10 : 1)
        let floor = logScale ? max(min(values.filter { $0 > 0 }.min() ?? 1, 1) / 2, 0.01) : 0
        func scaled(_ value: Double) -> Double {
            guard value > 0 else { return 0 }
            if logScale { return max(0, (log10(value) - log10(floor)) / (log10(maxValue) - log10(floor))) * plotWidth }
            return value / maxValue * plotWidth
        }
        for group in groups {
            let groupHeight = Double(group.bars.count) * (Self.barHeight + 2)
            out.append(##"<text x="\##(x)" y="\##(cursor + groupHeight / 2 + 4)" font-size="12">\##(escaped(group.label))</text>"##)
            for (index, bar) in group.bars.enumerated() {
                let barY = cursor + Double(index) * (Self.barHeight + 2)
                let barWidth = max(1, scaled(bar.value))
                let color = Self.palette[bar.series % Self.palette.count]
                out.append(##"<rect x="\##(plotX)" y="\##(barY)" width="\##(format(barWidth))" height="\##(Self.barHeight)" fill="\##(color)"><title>\##(escaped(series[bar.series])): \##(escaped(bar.note ?? format(bar.value)))</title></rect>"##)
                out.append(##"<text x="\##(format(plotX + barWidth + 4))" y="\##(barY + 11)" font-size="11">\##(escaped(bar.note ?? format(bar.value)))</text>"##)
            }
            cursor += groupHeight + Self.groupGap
        }
        out.append(##"<line x1="\##(plotX)" y1="\##(y + 22)" x2="\##(plotX)" y2="\##(cursor - Self.groupGap + 2)" stroke="#444"/>"##)
        out.append(##"<text x="\##(plotX)" y="\##(cursor + 6)" font-size="11" fill="#555">\##(escaped(unit))\##(logScale ? " (log scale)" : "")</text>"##)
        return (out.joined(separator: "\n"), cursor + 14 - y)
    }
}

/// Panels stacked into one SVG document with a legend and a caption.
struct SVGDocument {
    var title: String
    var caption: String
    var series: [String]
    var panels: [BarChart]
    var width = 820.0

    var text: String {
        var body: [String] = []
        body.append(##"<text x="20" y="28" font-size="17" font-weight="bold">\##(escaped(title))</text>"##)
        body.append(##"<text x="20" y="46" font-size="11" fill="#555">\##(escaped(caption))</text>"##)
        var legendX = 20.0
        for (index, name) in series.enumerated() {
            body.append(##"<rect x="\##(legendX)" y="58" width="12" height="12" fill="\##(BarChart.palette[index % BarChart.palette.count])"/>"##)
            body.append(##"<text x="\##(legendX + 16)" y="68" font-size="12">\##(escaped(name))</text>"##)
            legendX += 34 + Double(name.count) * 7.2
        }
        var y = 84.0
        for panel in panels {
            let (svg, height) = panel.render(x: 20, y: y, width: width - 40)
            body.append(svg)
            y += height + 16
        }
        return """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(y))" viewBox="0 0 \(Int(width)) \(Int(y))" font-family="Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(body.joined(separator: "\n"))
        </svg>

        """
    }
}

/// `text` with the characters XML reserves escaped.
func escaped(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}

private func format(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e9 { return String(Int(value)) }
    return String(format: abs(value) >= 100 ? "%.0f" : abs(value) >= 10 ? "%.1f" : "%.2f", value)
}
