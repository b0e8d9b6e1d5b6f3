namespace Loop.Domain.Budgets;

using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;

/// <summary>Whether a run may start, and how much it may spend: <see cref="MaxUsd"/> is the least any
/// budget of its scopes has left (null: none is limited).</summary>
public sealed record BudgetAllowance(string? Refusal, decimal? MaxUsd)
{
    public static readonly BudgetAllowance Unlimited = new(null, null);
}

/// <summary>What a channel is told once a period: its budget is at 80% or spent.</summary>
public sealed record BudgetNotice(BudgetStatus Status, BudgetPeriod Period, bool Spent)
{
    public string Text
    {
        get
        {
            var limit = Status.Limits.Of(Period)!.Value;
            var spent = Status.Spent(Period);
            var resets = BudgetWire.When(Status.ResetsAt(Period));
            var scope = Status.Budget.Key.Scope;
            var paused = scope == BudgetScope.Task ? "the task pauses" : "its messages are not run and its tasks pause";
            return Spent
                ? $"The {Period.Word()} budget of {scope.ToWire()} {Status.Name} ({BudgetWire.Usd(limit)}) is spent ({BudgetWire.Usd(spent)}). Until it resets at {resets}, {paused}."
                : $"{Math.Floor(spent / limit * 100m):0}% of the {Period.Word()} budget of {scope.ToWire()} {Status.Name} is spent ({BudgetWire.Usd(spent)} of {BudgetWire.Usd(limit)}); it resets at {resets}.";
        }
    }
}

/// <summary>
/// Holds runs to the budgets of their channel, task and connector. Before a run: refuses it when a
/// budget is spent, else says how much it may spend. After: warns once a period at 80% and says once
/// when a budget is spent. What is spent is read from the store each time (finished runs, their
/// reported cost, or their tokens at the price table), so every node of a cluster counts the same.
/// </summary>
public sealed class BudgetGuard(ILoopStore store, PriceTable prices, TimeProvider time)
{
    /// <summary>The budgets a run of this channel (and task) counts against.</summary>
    private static IReadOnlyList<BudgetKey> KeysOf(Channel channel, ScheduledTask? task)
    {
        var keys = new List<BudgetKey> { new(BudgetScope.Channel, channel.Id) };
        if (task is not null)
        {
            keys.Add(new BudgetKey(BudgetScope.Task, task.Id));
        }
        if (channel.Platform is { } connector)
        {
            keys.Add(new BudgetKey(BudgetScope.Connector, connector));
        }
        return keys;
    }

    public async Task<BudgetAllowance> BeforeRunAsync(Channel channel, ScheduledTask? task, CancellationToken cancellationToken)
    {
        var statuses = await StatusesAsync(channel, task, 0m, cancellationToken);
        if (statuses.Count == 0)
        {
            return BudgetAllowance.Unlimited;
        }
        foreach (var status in statuses)
        {
            if (status.Exhausted is { } period)
            {
                return new BudgetAllowance(Refusal(status, period, task), 0m);
            }
        }
        return new BudgetAllowance(null, statuses.Min(s => s.Remaining));
    }

    /// <summary>The notices a run that cost <paramref name="runCost"/> brings, each claimed in the store
    /// so that it is given once a period whichever node ran the run. Called before the run is stored.</summary>
    public async Task<IReadOnlyList<BudgetNotice>> AfterRunAsync(Channel channel, ScheduledTask? task, decimal runCost, CancellationToken cancellationToken)
    {
        var notices = new List<BudgetNotice>();
        foreach (var status in await StatusesAsync(channel, task, runCost, cancellationToken))
        {
            foreach (var period in new[] { BudgetPeriod.Day, BudgetPeriod.Month })
            {
                if (status.Limits.Of(period) is not { } limit)
                {
                    continue;
                }
                var spent = status.Spent(period);
                var level = spent >= limit ? 100 : spent >= limit * BudgetStatus.WarningShare ? 80 : 0;
                if (level == 0)
                {
                    continue;
                }
                var periodKey = BudgetPeriods.Key(period, status.At);
                // A budget spent in one go is not warned about afterwards: claiming 80 too keeps it quiet.
                var claimed = await store.ClaimBudgetNoticeAsync(status.Budget.Key, $"{period.Word()}:{level}:{periodKey}", status.At, cancellationToken);
                if (level == 100)
                {
                    await store.ClaimBudgetNoticeAsync(status.Budget.Key, $"{period.Word()}:80:{periodKey}", status.At, cancellationToken);
                }
                if (claimed)
                {
                    notices.Add(new BudgetNotice(status, period, Spent: level == 100));
                }
            }
        }
        return notices;
    }

    /// <summary>What a finished run cost: as reported, else its tokens at the price table (0 without a price).</summary>
    public decimal CostOf(string? model, RunUsage usage) =>
        usage.CostUsd != 0m ? usage.CostUsd : prices.CostOf(model, usage) ?? 0m;

    /// <summary>A budget's state now; <paramref name="extra"/> is a run's cost not yet stored.</summary>
    public async Task<BudgetStatus> StatusAsync(Budget budget, string name, decimal extra, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var day = await SpentSinceAsync(budget.Key, BudgetPeriods.Start(BudgetPeriod.Day, now), cancellationToken);
        var month = await SpentSinceAsync(budget.Key, BudgetPeriods.Start(BudgetPeriod.Month, now), cancellationToken);
        return new BudgetStatus(budget, name, day + extra, month + extra, now);
    }

    private async Task<IReadOnlyList<BudgetStatus>> StatusesAsync(Channel channel, ScheduledTask? task, decimal extra, CancellationToken cancellationToken)
    {
        var budgets = await store.GetBudgetsAsync(KeysOf(channel, task), cancellationToken);
        if (budgets.Count == 0)
        {
            return [];
        }
        var statuses = new List<BudgetStatus>();
        foreach (var budget in budgets.Where(b => !b.Limits.IsNone))
        {
            var name = budget.Key.Scope switch
            {
                BudgetScope.Channel => channel.Name,
                BudgetScope.Task => task!.Name,
                _ => (await store.GetConnectorAsync(budget.Key.Id, cancellationToken))?.Name ?? budget.Key.Id,
            };
            statuses.Add(await StatusAsync(budget, name, extra, cancellationToken));
        }
        return statuses;
    }

    private async Task<decimal> SpentSinceAsync(BudgetKey key, DateTimeOffset from, CancellationToken cancellationToken)
    {
        var query = key.Scope switch
        {
            BudgetScope.Channel => new UsageQuery(from, null, key.Id),
            BudgetScope.Task => new UsageQuery(from, null, null, TaskId: key.Id),
            _ => new UsageQuery(from, null, null, ConnectorId: key.Id),
        };
        return (await store.GetUsageTotalsAsync(query, prices, cancellationToken)).CostUsd;
    }

    private string Refusal(BudgetStatus status, BudgetPeriod period, ScheduledTask? task)
    {
        var resetsAt = status.ResetsAt(period);
        var left = TimeSpan.FromMinutes(Math.Ceiling((resetsAt - time.GetUtcNow()).TotalMinutes));
        var what = task is null ? "Not run" : $"Task {task.Name} paused";
        return $"{what}: the {period.Word()} budget of {status.Budget.Key.Scope.ToWire()} {status.Name} ({BudgetWire.Usd(status.Limits.Of(period)!.Value)}) is spent "
            + $"({BudgetWire.Usd(status.Spent(period))}). It resets at {BudgetWire.When(resetsAt)} (in {Durations.Format(left)}); "
            + "raise it on the dashboard's Usage page or with /loop budget.";
    }
}
