import PipeRun

/// A stateful transform: `running-total:CUSTOMER,AMOUNT` adds a column `running_total`, the sum
/// of AMOUNT over this customer's rows so far. The totals are its state: pipe-run saves them in
/// every checkpoint and restores them on resume, so they are exact however often the job is
/// interrupted.
public final class RunningTotal: StatefulRowTransform {
    public static let descriptor = TransformDescriptor(
        name: "running-total", usage: "running-total:CUSTOMER,AMOUNT",
        summary: "add running_total: AMOUNT summed per CUSTOMER so far (stateful)"
    ) { argument in
        let names = argument.split(separator: ",").map(String.init)
        guard names.count == 2 else {
            throw PipeRunError(.usage, "running-total: expected CUSTOMER,AMOUNT, got '\(argument)'")
        }
        return RunningTotal(customer: names[0], amount: names[1])
    }

    /// Totals in cents, so that sums are exact.
    public struct State: Codable, Sendable {
        public var cents: [String: Int] = [:]
    }

    public var state = State()
    let customerColumn: String
    let amountColumn: String
    var customer = 0
    var amount = 0
    let builder = RowBuilder()

    public init(customer: String, amount: String) {
        customerColumn = customer
        amountColumn = amount
    }

    public func start(input: Columns) throws -> Columns {
        customer = try input.require(customerColumn, for: "running-total")
        amount = try input.require(amountColumn, for: "running-total")
        return Columns(input.names + ["running_total"])
    }

    public func process(_ row: Row, emit: (Row) throws -> Void) throws {
        guard let value = row[amount].double else {
            // Thrown errors follow --on-error (fail, skip or quarantine), with the row's line and offset.
            throw PipeRunError(.dataError, "running-total: '\(row[amount].string)' is not an amount")
        }
        let key = row[customer].string
        let total = state.cents[key, default: 0] + Int((value * 100).rounded())
        state.cents[key] = total
        builder.reset()
        for i in 0..<row.count { builder.append(row[i]) }
        let sign = total < 0 ? "-" : ""
        let cents = abs(total) % 100
        builder.append("\(sign)\(abs(total) / 100).\(cents < 10 ? "0" : "")\(cents)")
        try builder.withRow(line: row.line, offset: row.offset) { try emit($0) }
    }
}
