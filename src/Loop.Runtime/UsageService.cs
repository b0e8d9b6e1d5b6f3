namespace Loop.Runtime;

using System.Globalization;
using Loop.Domain;
using Loop.Domain.Runs;

/// <summary>A usage report as a front end asks for it; times are ISO 8601 text (or a date) as typed.</summary>
public sealed record UsageRequest(string? From = null, string? To = null, string? ChannelId = null);

/// <summary>
/// Token and cost reports over finished runs. Validates the range with messages that name the
/// field, prices token-only runs from the config's price table, and keeps a channel token to its
/// own channel.
/// </summary>
public sealed class UsageService(ILoopStore store, PriceTable prices, TimeProvider time)
{
    public const int DefaultDays = 30;
    public const int MaxDays = 366;
    public const int DefaultCallsLimit = 50;

    public Task<UsageTotals> GetTotalsAsync(Caller caller, UsageRequest request, CancellationToken cancellationToken) =>
        store.GetUsageTotalsAsync(Query(caller, request), prices, cancellationToken);

    /// <summary>One entry per UTC day of the last <paramref name="days"/> days (today included),
    /// days without runs as zeros, oldest first.</summary>
    public async Task<IReadOnlyList<UsageGroup>> GetDailyAsync(Caller caller, int? days, string? channelId, CancellationToken cancellationToken)
    {
        var count = days ?? DefaultDays;
        if (count is < 1 or > MaxDays)
        {
            throw new LoopValidationException("days", $"days must be between 1 and {MaxDays} (found {count})");
        }
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var first = today.AddDays(1 - count);
        var from = new DateTimeOffset(first.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        var query = new UsageQuery(from, null, Scope(caller, channelId));
        var groups = (await store.GetUsageGroupsAsync(UsageGrouping.Day, query, prices, cancellationToken))
            .ToDictionary(g => g.Key!, StringComparer.Ordinal);
        return Enumerable.Range(0, count)
            .Select(i => first.AddDays(i).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))
            .Select(day => groups.GetValueOrDefault(day) ?? new UsageGroup(day, UsageTotals.Zero))
            .ToList();
    }

    public Task<IReadOnlyList<UsageGroup>> GetGroupsAsync(Caller caller, UsageGrouping by, UsageRequest request, CancellationToken cancellationToken) =>
        store.GetUsageGroupsAsync(by, Query(caller, request), prices, cancellationToken);

    public Task<IReadOnlyList<UsageCall>> ListCallsAsync(Caller caller, UsageRequest request, int? limit, string? before, CancellationToken cancellationToken) =>
        store.ListUsageCallsAsync(Query(caller, request), prices, ChannelService.ClampPage(limit ?? DefaultCallsLimit), before, cancellationToken);

    private UsageQuery Query(Caller caller, UsageRequest request)
    {
        var from = ParseTime("from", request.From);
        var to = ParseTime("to", request.To);
        if (from is not null && to is not null && from >= to)
        {
            throw new LoopValidationException("to", $"to ({request.To}) must be later than from ({request.From})");
        }
        return new UsageQuery(from, to, Scope(caller, request.ChannelId));
    }

    /// <summary>A channel token reports on its own channel only, whether or not it names it.</summary>
    private static string? Scope(Caller caller, string? channelId)
    {
        if (string.IsNullOrWhiteSpace(channelId))
        {
            return caller.ChannelId;
        }
        caller.EnsureCanAccess(channelId);
        return channelId;
    }

    private static DateTimeOffset? ParseTime(string field, string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            return new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var instant))
        {
            return instant;
        }
        throw new LoopValidationException(field,
            $"{field} must be a date like 2025-06-01 or an ISO 8601 time like 2025-06-01T12:00:00Z (found \"{text}\")");
    }
}
