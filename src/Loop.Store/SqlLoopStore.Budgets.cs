namespace Loop.Store;

using Dapper;
using Loop.Domain.Budgets;

public abstract partial class SqlLoopStore
{
    private const string BudgetSelect =
        "SELECT scope AS Scope, scope_id AS ScopeId, daily_usd AS DailyUsd, monthly_usd AS MonthlyUsd, updated_at AS UpdatedAt FROM budgets";

    public Task<IReadOnlyList<Budget>> GetBudgetsAsync(IReadOnlyList<BudgetKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<Budget>>([]);
        }
        // A run counts against at most three budgets: one statement with a condition each.
        var parameters = new DynamicParameters();
        var conditions = keys.Select((key, i) =>
        {
            parameters.Add($"scope{i}", key.Scope.ToWire());
            parameters.Add($"id{i}", key.Id);
            return $"(scope = @scope{i} AND scope_id = @id{i})";
        });
        var sql = $"{BudgetSelect} WHERE {string.Join(" OR ", conditions)}";
        return ReadAsync(async connection =>
            (IReadOnlyList<Budget>)(await connection.QueryAsync<BudgetRow>(Command(sql, parameters, null, cancellationToken)))
                .Select(r => r.ToBudget())
                .OrderBy(b => keys.ToList().IndexOf(b.Key))
                .ToList(), cancellationToken);
    }

    public Task<IReadOnlyList<Budget>> ListBudgetsAsync(CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
            (IReadOnlyList<Budget>)(await connection.QueryAsync<BudgetRow>(Command(BudgetSelect + " ORDER BY scope, scope_id", null, null, cancellationToken)))
                .Select(r => r.ToBudget())
                .ToList(), cancellationToken);

    public Task SetBudgetAsync(Budget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(budget);
        var key = new { scope = budget.Key.Scope.ToWire(), id = budget.Key.Id };
        return WriteAsync(async (connection, tx) =>
        {
            if (budget.Limits.IsNone)
            {
                return await connection.ExecuteAsync(Command("DELETE FROM budgets WHERE scope = @scope AND scope_id = @id", key, tx, cancellationToken));
            }
            return await connection.ExecuteAsync(Command("""
                INSERT INTO budgets (scope, scope_id, daily_usd, monthly_usd, updated_at) VALUES (@scope, @id, @daily, @monthly, @at)
                ON CONFLICT (scope, scope_id) DO UPDATE SET daily_usd = excluded.daily_usd, monthly_usd = excluded.monthly_usd, updated_at = excluded.updated_at
                """, new
            {
                key.scope,
                key.id,
                daily = budget.Limits.DailyUsd is { } daily ? Columns.ToText(daily) : null,
                monthly = budget.Limits.MonthlyUsd is { } monthly ? Columns.ToText(monthly) : null,
                at = Columns.ToMs(budget.UpdatedAt),
            }, tx, cancellationToken));
        }, cancellationToken);
    }

    public Task<bool> ClaimBudgetNoticeAsync(BudgetKey key, string notice, DateTimeOffset at, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        return WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command("""
            INSERT INTO budget_notices (scope, scope_id, notice, given_at) VALUES (@scope, @id, @notice, @at)
            ON CONFLICT (scope, scope_id, notice) DO NOTHING
            """, new { scope = key.Scope.ToWire(), id = key.Id, notice, at = Columns.ToMs(at) }, tx, cancellationToken)) == 1, cancellationToken);
    }
}

internal sealed class BudgetRow
{
    public string Scope { get; set; } = "";
    public string ScopeId { get; set; } = "";
    public string? DailyUsd { get; set; }
    public string? MonthlyUsd { get; set; }
    public long UpdatedAt { get; set; }

    public Budget ToBudget() => new(
        new BudgetKey(BudgetWire.ScopeFromWire(Scope), ScopeId),
        new BudgetLimits(DailyUsd is null ? null : Columns.FromText(DailyUsd), MonthlyUsd is null ? null : Columns.FromText(MonthlyUsd)),
        Columns.FromMs(UpdatedAt));
}
