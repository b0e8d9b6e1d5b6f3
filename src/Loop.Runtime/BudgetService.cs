namespace Loop.Runtime;

using Loop.Domain;
using Loop.Domain.Budgets;

/// <summary>A scope's new limits, as a front end sends them: USD per UTC day and month, null for no limit.</summary>
public sealed record BudgetChange(decimal? DailyUsd, decimal? MonthlyUsd);

/// <summary>
/// Budgets as people set and read them: a scope's limits, what it spent this day and month, and when
/// each resets. Only the user changes a budget: an agent's channel token may read its own channel's,
/// never raise it.
/// </summary>
public sealed class BudgetService(ILoopStore store, ChannelService channels, TaskService tasks, BudgetGuard guard, TimeProvider time)
{
    /// <summary>The most a limit may be: larger is a typing slip, not a budget.</summary>
    public const decimal MaxUsd = 1_000_000m;

    public async Task<BudgetStatus> GetAsync(Caller caller, BudgetScope scope, string id, CancellationToken cancellationToken)
    {
        var name = await NameAsync(caller, scope, id, cancellationToken);
        var key = new BudgetKey(scope, id);
        var budget = (await store.GetBudgetsAsync([key], cancellationToken)).FirstOrDefault()
            ?? new Budget(key, new BudgetLimits(null, null), time.GetUtcNow());
        return await guard.StatusAsync(budget, name, 0m, cancellationToken);
    }

    public async Task<BudgetStatus> SetAsync(Caller caller, BudgetScope scope, string id, BudgetChange change, CancellationToken cancellationToken)
    {
        caller.EnsureUser("change a budget");
        var name = await NameAsync(caller, scope, id, cancellationToken);
        Check("daily_usd", change.DailyUsd);
        Check("monthly_usd", change.MonthlyUsd);
        if (change is { DailyUsd: { } daily, MonthlyUsd: { } monthly } && daily > monthly)
        {
            throw new LoopValidationException("daily_usd", $"daily_usd ({daily}) cannot be more than monthly_usd ({monthly})");
        }
        var budget = new Budget(new BudgetKey(scope, id), new BudgetLimits(change.DailyUsd, change.MonthlyUsd), time.GetUtcNow());
        await store.SetBudgetAsync(budget, cancellationToken);
        return await guard.StatusAsync(budget, name, 0m, cancellationToken);
    }

    /// <summary>The budget of the connector a channel talks through, when it has one with a limit.</summary>
    public async Task<BudgetStatus?> GetConnectorBudgetAsync(string channelId, CancellationToken cancellationToken)
    {
        if ((await store.GetChannelAsync(channelId, cancellationToken))?.Platform is not { } connectorId
            || (await store.GetBudgetsAsync([new BudgetKey(BudgetScope.Connector, connectorId)], cancellationToken)).FirstOrDefault() is not { } budget)
        {
            return null;
        }
        var name = (await store.GetConnectorAsync(connectorId, cancellationToken))?.Name ?? connectorId;
        return await guard.StatusAsync(budget, name, 0m, cancellationToken);
    }

    /// <summary>Every budget that has a limit, with what its scope spent.</summary>
    public async Task<IReadOnlyList<BudgetStatus>> ListAsync(Caller caller, CancellationToken cancellationToken)
    {
        caller.EnsureUser("list every budget");
        var statuses = new List<BudgetStatus>();
        foreach (var budget in await store.ListBudgetsAsync(cancellationToken))
        {
            statuses.Add(await guard.StatusAsync(budget, await NameAsync(caller, budget.Key.Scope, budget.Key.Id, cancellationToken), 0m, cancellationToken));
        }
        return statuses;
    }

    private async Task<string> NameAsync(Caller caller, BudgetScope scope, string id, CancellationToken cancellationToken)
    {
        switch (scope)
        {
            case BudgetScope.Channel:
                return (await channels.GetChannelAsync(caller, id, cancellationToken)).Name;
            case BudgetScope.Task:
                return (await tasks.GetAsync(caller, id, cancellationToken)).Name;
            default:
                caller.EnsureUser("read a connector's budget");
                return (await store.GetConnectorAsync(id, cancellationToken))?.Name
                    ?? throw new LoopNotFoundException($"connector {id} does not exist");
        }
    }

    private static void Check(string field, decimal? value)
    {
        if (value is { } usd && (usd < 0m || usd > MaxUsd))
        {
            throw new LoopValidationException(field, $"{field} must be a number of USD from 0 to {MaxUsd:0}, or null for no limit (found {usd})");
        }
    }
}
