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

    /// <summary>A chat's budget command: sets the limits typed (<c>5</c>, <c>$2.50</c>, <c>none</c>; one not
    /// typed stays as it was), then gives the channel's budget and its connector's, when it has one.</summary>
    public async Task<(BudgetStatus Channel, BudgetStatus? Connector)> ChatBudgetAsync(Caller caller, string channelId, string? daily, string? monthly,
        CancellationToken cancellationToken)
    {
        var status = await GetAsync(caller, BudgetScope.Channel, channelId, cancellationToken);
        if (daily is not null || monthly is not null)
        {
            var change = new BudgetChange(
                daily is null ? status.Limits.DailyUsd : TypedUsd("daily", daily),
                monthly is null ? status.Limits.MonthlyUsd : TypedUsd("monthly", monthly));
            status = await SetAsync(caller, BudgetScope.Channel, channelId, change, cancellationToken);
        }
        return (status, await GetConnectorBudgetAsync(channelId, cancellationToken));
    }

    /// <summary>A limit as typed in a chat: a number of USD, or none.</summary>
    private static decimal? TypedUsd(string field, string text)
    {
        var trimmed = text.Trim().TrimStart('$');
        if (trimmed.Equals("none", StringComparison.OrdinalIgnoreCase) || trimmed.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        return decimal.TryParse(trimmed, System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var usd)
            ? usd
            : throw new LoopValidationException(field, $"{field} must be a number of USD like 5 or 2.50, or none (found \"{text}\")");
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
