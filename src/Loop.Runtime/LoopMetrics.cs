namespace Loop.Runtime;

using System.Diagnostics.Metrics;
using Loop.Domain.Runs;

/// <summary>
/// Loop's own instruments (meter <see cref="MeterName"/>), per node: what its channels run, what its
/// tasks fire, what it takes in, and how full its agent slots are. Each event is recorded by the
/// part that decides it: <see cref="ChannelEventLog"/> for runs, <see cref="TaskClaimer"/> for fired
/// slots, <see cref="ChannelService"/> for messages. The exporter (Prometheus, at /metrics) is the host's.
/// </summary>
public sealed class LoopMetrics
{
    public const string MeterName = "Loop";

    private readonly Counter<long> _runsStarted;
    private readonly Counter<long> _runsFinished;
    private readonly Histogram<double> _runDuration;
    private readonly Histogram<double> _fireLateness;
    private readonly Counter<long> _messagesAccepted;

    public LoopMetrics(IMeterFactory meters, ContainerWorkerPool pool)
    {
        var meter = meters.Create(MeterName, LoopVersion.Current);
        _runsStarted = meter.CreateCounter<long>("loop.runs.started", "{run}", "Agent runs that started on this node");
        _runsFinished = meter.CreateCounter<long>("loop.runs.finished", "{run}",
            "Agent runs that ended on this node, by outcome (succeeded, failed, timed_out, cancelled)");
        // Seconds to an hour: a chat answer takes seconds, a task's work minutes.
        _runDuration = meter.CreateHistogram("loop.run.duration", "s", "How long runs that started took, start to end, by outcome",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] });
        // Slots fire within milliseconds of their instant; seconds means a busy node, more a node that was down.
        _fireLateness = meter.CreateHistogram("loop.task.fire_lateness", "s", "How long after its due instant each task slot fired",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600] });
        _messagesAccepted = meter.CreateCounter<long>("loop.messages.accepted", "{message}",
            "Messages stored for an agent, by source (api, or the connector kind: discord, telegram, email, whatsapp)");
        meter.CreateObservableUpDownCounter("loop.channel.queue_depth", () => pool.Waiting, "{run}",
            "Runs of this node's channels waiting for an agent slot (each takes every message its channel had pending)");
        meter.CreateObservableUpDownCounter("loop.container_pool.in_use", () => pool.InUse, "{slot}", "Agent slots running a run on this node");
        meter.CreateObservableUpDownCounter("loop.container_pool.capacity", () => pool.Capacity, "{slot}",
            "Agent slots of this node (max_concurrent_containers)");
    }

    public void RunStarted() => _runsStarted.Add(1);

    /// <summary>A run ended; one that never started (cancelled while it waited) has no duration.</summary>
    public void RunFinished(Run run)
    {
        var outcome = new KeyValuePair<string, object?>("outcome", run.Status.ToWire());
        _runsFinished.Add(1, outcome);
        if (run.StartedAt is { } start && run.FinishedAt is { } end)
        {
            _runDuration.Record(Math.Max(0, (end - start).TotalSeconds), outcome);
        }
    }

    public void TaskFired(DateTimeOffset due, DateTimeOffset fired) => _fireLateness.Record(Math.Max(0, (fired - due).TotalSeconds));

    /// <param name="source">"api", or the kind of connector the message came through.</param>
    public void MessageAccepted(string source) => _messagesAccepted.Add(1, new KeyValuePair<string, object?>("source", source));
}
