namespace Loop.Runtime;

using Loop.Domain;
using Loop.Domain.Runs;
using Loop.Grains;

/// <summary>What the daemon is doing right now, for a dashboard: the pool, the live channel
/// actors, armed tasks, and the runs of the last hour.</summary>
public sealed record RuntimeReport(
    string Node,
    string Version,
    int Pid,
    double UptimeSeconds,
    string Runner,
    QueueHealth Pool,
    IReadOnlyList<ActorState> Actors,
    int TasksArmed,
    IReadOnlyList<MinuteRuns> RunsPerMinute,
    RunDurations Durations,
    StoreHealth Store,
    EngineHealth Engine,
    int EventSubscribers);

/// <summary>A live channel actor: the run it is busy with (queued for a slot or running) and how
/// much work waits behind it (pending user messages plus queued runs).</summary>
public sealed record ActorState(string ChannelId, string ChannelName, string? ActiveRunId, int Queued);

/// <summary>Runs that finished in the minute starting at <see cref="Minute"/>; <see cref="Failed"/>
/// counts those that did not succeed.</summary>
public sealed record MinuteRuns(DateTimeOffset Minute, int Runs, int Failed);

/// <summary>Elapsed time (finish minus start) of the runs that finished in the window and had
/// started; the percentiles are null when there were none.</summary>
public sealed record RunDurations(int WindowMinutes, int Count, long? P50Ms, long? P90Ms, long? P99Ms, long? MaxMs);

/// <summary>Puts together the <see cref="RuntimeReport"/>: what the channel grains say they are
/// doing, the node's pool and timers, and two store reads.</summary>
public sealed class RuntimeService(
    ILoopStore store, IGrainFactory grains, TaskClaimer scheduler, ILoopEvents events, NodeHealth health, TimeProvider time)
{
    public const int WindowMinutes = 60;

    public async Task<RuntimeReport> GetReportAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var node = health.Report();
        var timings = (await store.ListFinishedRunTimingsAsync(now.AddMinutes(-WindowMinutes), cancellationToken))
            .Where(t => t.FinishedAt <= now) // one that ended after "now" belongs to the next report
            .ToList();
        return new RuntimeReport(
            node.Node, node.Version, node.Pid, node.UptimeSeconds, node.Runner, node.Queue,
            await ActorsAsync(cancellationToken),
            scheduler.ArmedCount,
            PerMinute(timings, now),
            Durations(timings),
            node.Store, node.Engine,
            events.SubscriberCount);
    }

    /// <summary>Every live channel grain (Orleans knows which are active) and the run each is busy with.</summary>
    private async Task<IReadOnlyList<ActorState>> ActorsAsync(CancellationToken cancellationToken)
    {
        var channelGrainType = grains.GetGrain<IChannelGrain>("-").GetGrainId().Type;
        var active = await grains.GetGrain<IManagementGrain>(0).GetActiveGrains(channelGrainType);
        if (active.Count == 0)
        {
            return [];
        }
        var statuses = await Task.WhenAll(active.Select(id => grains.GetGrain<IChannelGrain>(id).GetStatus()));
        var page = await store.ListChannelOverviewsAsync(new ChannelListQuery(ChannelIds: statuses.Select(s => s.ChannelId).ToList()), cancellationToken);
        var overviews = page.Channels.ToDictionary(o => o.Channel.Id, StringComparer.Ordinal);
        return statuses
            .OrderBy(s => s.ChannelId, StringComparer.Ordinal)
            .Select(s =>
            {
                var overview = overviews.GetValueOrDefault(s.ChannelId);
                return new ActorState(s.ChannelId, overview?.Channel.Name ?? s.ChannelId, s.ActiveRunId, overview?.Queued ?? 0);
            })
            .ToList();
    }

    /// <summary>The last <see cref="WindowMinutes"/> whole UTC minutes up to the current one, oldest first.</summary>
    private static List<MinuteRuns> PerMinute(IReadOnlyList<RunTiming> timings, DateTimeOffset now)
    {
        var current = new DateTimeOffset(now.UtcTicks - now.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var first = current.AddMinutes(1 - WindowMinutes);
        var runs = new int[WindowMinutes];
        var failed = new int[WindowMinutes];
        foreach (var timing in timings)
        {
            var minute = (int)((timing.FinishedAt - first).Ticks / TimeSpan.TicksPerMinute);
            if (timing.FinishedAt < first || minute >= WindowMinutes)
            {
                continue;
            }
            runs[minute]++;
            if (timing.Status != RunStatus.Succeeded)
            {
                failed[minute]++;
            }
        }
        return Enumerable.Range(0, WindowMinutes).Select(i => new MinuteRuns(first.AddMinutes(i), runs[i], failed[i])).ToList();
    }

    private static RunDurations Durations(IReadOnlyList<RunTiming> timings)
    {
        // A run cancelled before it got a slot never started: it has no duration.
        var elapsed = timings
            .Where(t => t.StartedAt is not null)
            .Select(t => (long)(t.FinishedAt - t.StartedAt!.Value).TotalMilliseconds)
            .Order()
            .ToList();
        if (elapsed.Count == 0)
        {
            return new RunDurations(WindowMinutes, 0, null, null, null, null);
        }
        return new RunDurations(WindowMinutes, elapsed.Count,
            Percentile(elapsed, 50), Percentile(elapsed, 90), Percentile(elapsed, 99), elapsed[^1]);
    }

    /// <summary>Nearest rank: the smallest value that at least <paramref name="percent"/>% of the values do not exceed.</summary>
    private static long Percentile(List<long> sorted, int percent) =>
        sorted[Math.Max(0, (int)Math.Ceiling(percent / 100.0 * sorted.Count) - 1)];
}
