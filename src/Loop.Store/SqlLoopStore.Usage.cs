namespace Loop.Store;

using Dapper;
using Loop.Domain.Runs;

public abstract partial class SqlLoopStore
{
    // Finished runs only: a run still going has not reported its usage yet.
    private const string FinishedRuns = "status IN ('succeeded', 'failed', 'timed_out', 'cancelled') AND finished_at IS NOT NULL";

    private const string HasUsage =
        "(input_tokens > 0 OR output_tokens > 0 OR cache_creation_input_tokens > 0 OR cache_read_input_tokens > 0 OR CAST(cost_usd AS REAL) <> 0)";

    public async Task<UsageTotals> GetUsageTotalsAsync(UsageQuery query, PriceTable prices, CancellationToken cancellationToken)
    {
        var groups = await GetUsageGroupsAsync(null, query, prices, cancellationToken);
        return groups.Count == 0 ? UsageTotals.Zero : groups[0].Totals;
    }

    public Task<IReadOnlyList<UsageGroup>> GetUsageGroupsAsync(UsageGrouping by, UsageQuery query, PriceTable prices, CancellationToken cancellationToken) =>
        GetUsageGroupsAsync((UsageGrouping?)by, query, prices, cancellationToken);

    public Task<IReadOnlyList<UsageCall>> ListUsageCallsAsync(UsageQuery query, PriceTable prices, int limit, string? beforeRunId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(prices);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var (where, parameters) = UsageFilter(query);
        parameters.Add("limit", limit);
        if (beforeRunId is not null)
        {
            where += " AND id < @before";
            parameters.Add("before", beforeRunId);
        }
        return ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<RunRow>(Command(
                $"{RunRow.Select} WHERE {where} AND {HasUsage} ORDER BY id DESC LIMIT @limit", parameters, null, cancellationToken));
            return (IReadOnlyList<UsageCall>)rows.Select(r => Priced(r.ToRun(), prices)).ToList();
        }, cancellationToken);
    }

    private Task<IReadOnlyList<UsageGroup>> GetUsageGroupsAsync(UsageGrouping? by, UsageQuery query, PriceTable prices, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(prices);
        var key = by switch
        {
            null => "NULL",
            UsageGrouping.Day => DayOfSql("finished_at"),
            UsageGrouping.Model => "model",
            UsageGrouping.Channel => "channel_id",
            UsageGrouping.Task => "task_id",
            _ => throw new ArgumentOutOfRangeException(nameof(by), by, "unknown usage grouping"),
        };
        var (where, parameters) = UsageFilter(query);
        // Tokens are summed here; costs are decimal text, so SQL only groups by them and C# sums
        // them exactly. Grouping by model too lets token-only runs be priced per model.
        var sql = $"""
            SELECT {key} AS Key, model AS Model, cost_usd AS CostUsd, COUNT(*) AS Runs,
                   SUM(CASE WHEN input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens > 0 THEN 1 ELSE 0 END) AS RunsWithTokens,
                   SUM(input_tokens) AS InputTokens, SUM(output_tokens) AS OutputTokens,
                   SUM(cache_creation_input_tokens) AS CacheCreationInputTokens, SUM(cache_read_input_tokens) AS CacheReadInputTokens,
                   SUM(num_turns) AS NumTurns, SUM(duration_ms) AS DurationMs
            FROM runs WHERE {where}
            GROUP BY 1, model, cost_usd
            """;
        return ReadAsync(async connection =>
        {
            var rows = await connection.QueryAsync<UsageRow>(Command(sql, parameters, null, cancellationToken));
            var totals = new Dictionary<string, (string? Key, UsageTotals Totals)>(StringComparer.Ordinal);
            foreach (var row in rows)
            {
                var slot = row.Key ?? "";
                var sum = totals.TryGetValue(slot, out var found) ? found.Totals : UsageTotals.Zero;
                totals[slot] = (row.Key, sum.Plus(row.ToTotals(prices)));
            }
            return (IReadOnlyList<UsageGroup>)totals.Values
                .OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new UsageGroup(g.Key, g.Totals))
                .ToList();
        }, cancellationToken);
    }

    private static (string Where, DynamicParameters Parameters) UsageFilter(UsageQuery query)
    {
        var where = FinishedRuns;
        var parameters = new DynamicParameters();
        if (query.From is { } from)
        {
            where += " AND finished_at >= @from";
            parameters.Add("from", Columns.ToMs(from));
        }
        if (query.To is { } to)
        {
            where += " AND finished_at < @to";
            parameters.Add("to", Columns.ToMs(to));
        }
        if (query.ChannelId is { } channelId)
        {
            where += " AND channel_id = @channel_id";
            parameters.Add("channel_id", channelId);
        }
        if (query.TaskId is { } taskId)
        {
            where += " AND task_id = @task_id";
            parameters.Add("task_id", taskId);
        }
        if (query.ConnectorId is { } connectorId)
        {
            where += " AND channel_id IN (SELECT id FROM channels WHERE platform = @connector_id)";
            parameters.Add("connector_id", connectorId);
        }
        return (where, parameters);
    }

    private static UsageCall Priced(Run run, PriceTable prices)
    {
        var u = run.Usage;
        if (u.CostUsd != 0m || prices.Find(run.Model) is not { } price)
        {
            return new UsageCall(run, u.CostUsd, false);
        }
        return new UsageCall(run, price.CostOf(u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens), true);
    }
}

/// <summary>The sums of one (key, model, cost) group of finished runs.</summary>
internal sealed class UsageRow
{
    public string? Key { get; set; }
    public string? Model { get; set; }
    public string CostUsd { get; set; } = "0";
    public long Runs { get; set; }
    public long RunsWithTokens { get; set; }
    public long InputTokens { get; set; }
    public long OutputTokens { get; set; }
    public long CacheCreationInputTokens { get; set; }
    public long CacheReadInputTokens { get; set; }
    public long NumTurns { get; set; }
    public long DurationMs { get; set; }

    public UsageTotals ToTotals(PriceTable prices)
    {
        // Every run of the group reported this same cost.
        var reported = Runs * Columns.FromText(CostUsd);
        var estimated = 0m;
        var unpriced = 0L;
        if (reported == 0m && RunsWithTokens > 0)
        {
            if (prices.Find(Model) is { } price)
            {
                estimated = price.CostOf(InputTokens, OutputTokens, CacheCreationInputTokens, CacheReadInputTokens);
            }
            else
            {
                unpriced = RunsWithTokens;
            }
        }
        return new UsageTotals(Runs, InputTokens, OutputTokens, CacheCreationInputTokens, CacheReadInputTokens,
            reported + estimated, estimated, unpriced, NumTurns, DurationMs);
    }
}
