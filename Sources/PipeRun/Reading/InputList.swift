/// Turns the inputs named on a command line into the list of files a job reads.
///
/// An argument with `*`, `?` or `[` is a pattern (quote it, so that pipe-run expands it rather
/// than the shell): its matches are sorted naturally, so that `app-9.log.gz` comes before
/// `app-10.log.gz`. Other arguments are file names. Arguments keep their command-line order.
public enum InputList {
    /// The files `arguments` name, in order. A pattern that matches nothing is an error.
    public static func expand(_ arguments: [String]) throws -> [String] {
        let (files, unmatched) = try expandAllowingMisses(arguments)
        if let pattern = unmatched.first { throw noMatch(pattern) }
        return files
    }

    /// The files `arguments` name, in order, and the patterns that match nothing.
    public static func expandAllowingMisses(_ arguments: [String]) throws -> (files: [String], unmatched: [String]) {
        var files: [String] = []
        var unmatched: [String] = []
        for argument in arguments {
            guard argument != "-", argument.contains(where: { "*?[".contains($0) }) else {
                files.append(argument)
                continue
            }
            var matches = glob_t()
            defer { globfree(&matches) }
            let rc = glob(argument, 0, nil, &matches)
            if rc == GLOB_NOMATCH || matches.gl_pathc == 0 {
                unmatched.append(argument)
                continue
            }
            guard rc == 0 else { throw PipeRunError(.ioError, "cannot expand \(argument)") }
            var found: [String] = []
            for i in 0..<Int(matches.gl_pathc) {
                if let p = matches.gl_pathv[i] { found.append(String(cString: p)) }
            }
            files.append(contentsOf: found.sorted(by: naturallyBefore))
        }
        return (files, unmatched)
    }

    /// The error for a pattern that matches nothing.
    public static func noMatch(_ pattern: String) -> PipeRunError {
        PipeRunError(.noInput, "no file matches \(pattern)")
    }

    /// Natural order: runs of digits compare as numbers (`a-9` < `a-10`), the rest bytewise.
    public static func naturallyBefore(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0, j = 0
        while i < x.count && j < y.count {
            let dx = x[i] >= 48 && x[i] <= 57, dy = y[j] >= 48 && y[j] <= 57
            if dx && dy {
                var ei = i, ej = j
                while ei < x.count && x[ei] >= 48 && x[ei] <= 57 { ei += 1 }
                while ej < y.count && y[ej] >= 48 && y[ej] <= 57 { ej += 1 }
                // Compare without leading zeros: longer is larger, then digit by digit.
                var si = i, sj = j
                while si < ei - 1 && x[si] == 48 { si += 1 }
                while sj < ej - 1 && y[sj] == 48 { sj += 1 }
                if ei - si != ej - sj { return ei - si < ej - sj }
                for k in 0..<(ei - si) where x[si + k] != y[sj + k] { return x[si + k] < y[sj + k] }
                if ei - i != ej - j { return ei - i < ej - j }
                i = ei
                j = ej
            } else {
                if x[i] != y[j] { return x[i] < y[j] }
                i += 1
                j += 1
            }
        }
        return x.count - i < y.count - j
    }
}
