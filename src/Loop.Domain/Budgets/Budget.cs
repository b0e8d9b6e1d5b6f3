namespace Loop.Domain.Budgets;

using System.Globalization;

/// <summary>What a budget limits: the runs of a channel, of a task, or of every channel of a connector.</summary>
public enum BudgetScope
{
    Channel,
    Task,
    Connector,
}

/// <summary>Budgets reset at the start of each UTC day and month, the days the Usage page shows.</summary>
public enum BudgetPeriod
{
    Day,
    Month,
}

/// <summary>Which budget: a scope and the id of its channel, task or connector.</summary>
public sealed record BudgetKey(BudgetScope Scope, string Id);

/// <summary>USD a scope may spend per UTC day and month; null is no limit.</summary>
public sealed record BudgetLimits(decimal? DailyUsd, decimal? MonthlyUsd)
{
    public bool IsNone => DailyUsd is null && MonthlyUsd is null;

    public decimal? Of(BudgetPeriod period) => period == BudgetPeriod.Day ? DailyUsd : MonthlyUsd;
}

/// <summary>A scope's stored budget.</summary>
public sealed record Budget(BudgetKey Key, BudgetLimits Limits, DateTimeOffset UpdatedAt);

/// <summary>A budget and what its scope spent in the current day and month (finished runs, reported
/// cost or priced from tokens), as of <see cref="At"/>; <see cref="Name"/> is how people know the scope.</summary>
public sealed record BudgetStatus(Budget Budget, string Name, decimal DaySpent, decimal MonthSpent, DateTimeOffset At)
{
    /// <summary>At this share of a limit the channel is warned, once a period.</summary>
    public const decimal WarningShare = 0.8m;

    public BudgetLimits Limits => Budget.Limits;

    public decimal Spent(BudgetPeriod period) => period == BudgetPeriod.Day ? DaySpent : MonthSpent;

    public DateTimeOffset ResetsAt(BudgetPeriod period) => BudgetPeriods.End(period, At);

    /// <summary>What may still be spent before a limit is reached (never below zero); null without limits.</summary>
    public decimal? Remaining => Periods()
        .Select(p => (decimal?)Math.Max(0m, Limits.Of(p)!.Value - Spent(p)))
        .Min();

    /// <summary>The limit reached, if any: the one that resets last when both are.</summary>
    public BudgetPeriod? Exhausted => Periods()
        .Where(p => Spent(p) >= Limits.Of(p)!.Value)
        .Select(p => (BudgetPeriod?)p)
        .LastOrDefault();

    private IEnumerable<BudgetPeriod> Periods() =>
        new[] { BudgetPeriod.Day, BudgetPeriod.Month }.Where(p => Limits.Of(p) is not null);
}

/// <summary>The UTC day and month a budget counts in.</summary>
public static class BudgetPeriods
{
    public static DateTimeOffset Start(BudgetPeriod period, DateTimeOffset at)
    {
        var utc = at.UtcDateTime;
        return period == BudgetPeriod.Day
            ? new DateTimeOffset(utc.Date, TimeSpan.Zero)
            : new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero);
    }

    public static DateTimeOffset End(BudgetPeriod period, DateTimeOffset at) =>
        period == BudgetPeriod.Day ? Start(period, at).AddDays(1) : Start(period, at).AddMonths(1);

    /// <summary>"2026-12-04" or "2026-12": names the period a notice was given in.</summary>
    public static string Key(BudgetPeriod period, DateTimeOffset at) =>
        Start(period, at).ToString(period == BudgetPeriod.Day ? "yyyy-MM-dd" : "yyyy-MM", CultureInfo.InvariantCulture);
}

public static class BudgetWire
{
    public static string ToWire(this BudgetScope scope) => scope switch
    {
        BudgetScope.Channel => "channel",
        BudgetScope.Task => "task",
        BudgetScope.Connector => "connector",
        _ => throw new ArgumentOutOfRangeException(nameof(scope), scope, "unknown budget scope"),
    };

    public static BudgetScope ScopeFromWire(string value) => value switch
    {
        "channel" => BudgetScope.Channel,
        "task" => BudgetScope.Task,
        "connector" => BudgetScope.Connector,
        _ => throw new ArgumentOutOfRangeException(nameof(value), value, "unknown budget scope"),
    };

    public static string Word(this BudgetPeriod period) => period == BudgetPeriod.Day ? "daily" : "monthly";

    /// <summary>Dollars as people read them: two decimals, more only for amounts under a cent.</summary>
    public static string Usd(decimal amount) =>
        "$" + (amount != 0m && Math.Abs(amount) < 0.01m
            ? amount.ToString("0.####", CultureInfo.InvariantCulture)
            : amount.ToString("#,0.00", CultureInfo.InvariantCulture));

    /// <summary>"2026-12-05 00:00 UTC".</summary>
    public static string When(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}
