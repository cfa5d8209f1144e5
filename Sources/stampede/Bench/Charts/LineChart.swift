/// Lines over a shared x axis with y in [0, 1] (precision, recall, rates), as one SVG document.
struct LineChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var dashed = false
    }

    var title: String
    var caption: String
    var xLabel: String
    var xRange: ClosedRange<Double>
    var series: [Series]
    /// Vertical markers (x, label).
    var markers: [(x: Double, label: String)] = []
    var width = 820.0
    var height = 420.0

    var svg: String {
        let left = 60.0, right = width - 20, top = 84.0, bottom = height - 46
        func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * (right - left) }
        func py(_ y: Double) -> Double { bottom - min(1, max(0, y)) * (bottom - top) }
        var body: [String] = []
        body.append(##"<text x="20" y="28" font-size="17" font-weight="bold">\##(escaped(title))</text>"##)
        body.append(##"<text x="20" y="46" font-size="11" fill="#555">\##(escaped(caption))</text>"##)
        var legendX = 20.0
        for (index, line) in series.enumerated() {
            let colour = BarChart.palette[index % BarChart.palette.count]
            body.append(##"<line x1="\##(legendX)" y1="64" x2="\##(legendX + 14)" y2="64" stroke="\##(colour)" stroke-width="3"\##(line.dashed ? #" stroke-dasharray="4 3""# : "")/>"##)
            body.append(##"<text x="\##(legendX + 18)" y="68" font-size="12">\##(escaped(line.name))</text>"##)
            legendX += 40 + Double(line.name.count) * 7
        }
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            body.append(##"<line x1="\##(left)" y1="\##(py(tick))" x2="\##(right)" y2="\##(py(tick))" stroke="#ddd"/>"##)
            body.append(##"<text x="\##(left - 8)" y="\##(py(tick) + 4)" font-size="10" text-anchor="end">\##(tick)</text>"##)
        }
        let step = (xRange.upperBound - xRange.lowerBound) / 5
        for index in 0...5 {
            let x = xRange.lowerBound + Double(index) * step
            body.append(##"<text x="\##(px(x))" y="\##(bottom + 16)" font-size="10" text-anchor="middle">\##(String(format: "%.2f", x))</text>"##)
        }
        body.append(##"<text x="\##((left + right) / 2)" y="\##(bottom + 34)" font-size="12" text-anchor="middle">\##(escaped(xLabel))</text>"##)
        for marker in markers {
            body.append(##"<line x1="\##(px(marker.x))" y1="\##(top)" x2="\##(px(marker.x))" y2="\##(bottom)" stroke="#888" stroke-dasharray="2 2"/>"##)
            body.append(##"<text x="\##(px(marker.x) + 3)" y="\##(top + 10)" font-size="10" fill="#444">\##(escaped(marker.label))</text>"##)
        }
        for (index, line) in series.enumerated() where !line.points.isEmpty {
            let colour = BarChart.palette[index % BarChart.palette.count]
            let path = line.points.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " ")
            body.append(##"<polyline fill="none" stroke="\##(colour)" stroke-width="2"\##(line.dashed ? #" stroke-dasharray="4 3""# : "") points="\##(path)"/>"##)
        }
        return """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(body.joined(separator: "\n"))
        </svg>

        """
    }
}
