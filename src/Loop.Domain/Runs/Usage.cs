namespace Loop.Domain.Runs;

/// <summary>What a model costs, in USD per million tokens (key <c>model_prices</c> of config.json).</summary>
public sealed record ModelPrice(decimal Input, decimal Output, decimal CacheWrite, decimal CacheRead)
{
    public decimal CostOf(long inputTokens, long outputTokens, long cacheWriteTokens, long cacheReadTokens) =>
        (inputTokens * Input + outputTokens * Output + cacheWriteTokens * CacheWrite + cacheReadTokens * CacheRead) / 1_000_000m;
}

/// <summary>Prices by model id. A model matches its own entry, else the longest entry it starts
/// with, so "claude-sonnet-4-5" also prices "claude-sonnet-4-5-20250929".</summary>
public sealed class PriceTable(IReadOnlyDictionary<string, ModelPrice> prices)
{
    public static readonly PriceTable Empty = new(new Dictionary<string, ModelPrice>());

    public ModelPrice? Find(string? model)
    {
        if (string.IsNullOrEmpty(model))
        {
            return null;
        }
        if (prices.TryGetValue(model, out var exact))
        {
            return exact;
        }
        return prices.Where(p => model.StartsWith(p.Key, StringComparison.OrdinalIgnoreCase))
            .OrderByDescending(p => p.Key.Length)
            .Select(p => p.Value)
            .FirstOrDefault();
    }

    /// <summary>What these tokens cost at the model's price; null when the model has none.</summary>
    public decimal? CostOf(string? model, RunUsage usage) =>
        Find(model)?.CostOf(usage.InputTokens, usage.OutputTokens, usage.CacheCreationInputTokens, usage.CacheReadInputTokens);
}

/// <summary>Which finished runs to count: finished in [From, To), of one channel or all, of one task,
/// of the channels of one connector.</summary>
public sealed record UsageQuery(DateTimeOffset? From, DateTimeOffset? To, string? ChannelId, string? TaskId = null, string? ConnectorId = null);

public enum UsageGrouping
{
    /// <summary>By UTC date of finishing, keys like "2025-06-01".</summary>
    Day,
    Model,
    Channel,

    /// <summary>By task; runs of chat messages have a null key.</summary>
    Task,
}

/// <summary>Sums over finished runs. <see cref="CostUsd"/> is what runs reported plus, for runs
/// that reported tokens but no cost, <see cref="EstimatedCostUsd"/> from the price table.
/// <see cref="UnpricedRuns"/> reported tokens but no cost and have no price.</summary>
public sealed record UsageTotals(
    long Runs,
    long InputTokens,
    long OutputTokens,
    long CacheCreationInputTokens,
    long CacheReadInputTokens,
    decimal CostUsd,
    decimal EstimatedCostUsd,
    long UnpricedRuns,
    long NumTurns,
    long DurationMs)
{
    public static readonly UsageTotals Zero = new(0, 0, 0, 0, 0, 0m, 0m, 0, 0, 0);

    public UsageTotals Plus(UsageTotals other) => new(
        Runs + other.Runs,
        InputTokens + other.InputTokens,
        OutputTokens + other.OutputTokens,
        CacheCreationInputTokens + other.CacheCreationInputTokens,
        CacheReadInputTokens + other.CacheReadInputTokens,
        CostUsd + other.CostUsd,
        EstimatedCostUsd + other.EstimatedCostUsd,
        UnpricedRuns + other.UnpricedRuns,
        NumTurns + other.NumTurns,
        DurationMs + other.DurationMs);
}

/// <summary>The totals of one day, model, channel or task.</summary>
public sealed record UsageGroup(string? Key, UsageTotals Totals);

/// <summary>One finished run with usage, with its cost (reported, or estimated when
/// <see cref="CostEstimated"/>).</summary>
public sealed record UsageCall(Run Run, decimal CostUsd, bool CostEstimated);
