/// A CSV made to trip a reader that splits it anywhere: notes in quotes that hold line ends
/// and text that looks like whole records (and headers), doubled quotes, and a few fields of
/// megabytes. One of those holds no quote at all, only fake records, so that a guess made in
/// its middle from a window of bytes is wrong (it must be caught and the range run again).
enum QuotedCSV {
    static let header = "id,status,city,amount,note"

    static func make(rows: Int, seed: UInt64 = 5, bigFieldEvery: Int = 0, bigFieldBytes: Int = 2 << 20) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var out = Array((header + "\n").utf8)
        let statuses = ["paid", "refunded", "shipped", "pending"]
        let cities = ["Lyon", "\"Washington, D.C.\"", "Oslo", "\"St. John's, NL\"", "Zürich"]
        var bigFields = 0
        for id in 1...rows {
            let status = statuses[Int(rng.next() % 4)]
            let city = cities[Int(rng.next() % 5)]
            let amount = "\(rng.next() % 1000).\(rng.next() % 100)"
            var note: String
            if bigFieldEvery > 0 && id % bigFieldEvery == 0 {
                bigFields += 1
                // Megabytes of fake records: quote-free in odd fields, with doubled quotes in even ones.
                var text = ""
                var k = 0
                while text.utf8.count < bigFieldBytes {
                    k += 1
                    text += bigFields % 2 == 1 ? "\(k),paid,Paris,12.50,fake\n" : "\(k),\"\"paid\"\",Oslo,3.10\n"
                }
                note = "\"" + text + "\""
            } else {
                switch rng.next() % 6 {
                case 0: note = "\"\(id + 1),refunded,Oslo,3.10,\nnext line\n\(id + 2),paid,Lyon,1.00,x\""
                case 1: note = "\"\(header)\n\(id),paid,Lyon,9.99,\"\"quoted\"\"\""
                case 2: note = "\"ends with a line end\n\""
                case 3: note = "\"\"\"\""
                case 4: note = "plain note \(id)"
                default: note = ""
                }
            }
            out += Array("\(id),\(status),\(city),\(amount),\(note)\n".utf8)
        }
        return out
    }
}
