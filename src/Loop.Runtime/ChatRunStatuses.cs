namespace Loop.Runtime;

using System.Collections.Concurrent;
using Loop.Domain.Channels;

/// <summary>
/// The status messages of one connector's chat runs: one for each run a person waits on (not a task's:
/// scheduled work has nobody watching, its channel gets its output), started when the run starts, fed
/// its output lines, and ended with it. The platform's part is <c>start</c>: a reporter that shows the
/// message there.
/// </summary>
public sealed class ChatRunStatuses(Func<ChatRunEvent, RunStatusReporter> start)
{
    private readonly ConcurrentDictionary<string, RunStatusReporter> _statuses = new(StringComparer.Ordinal);

    /// <summary>Takes a run event of the connector's feed; returns the reporter it started, if any, for
    /// the adapter to wait on at shutdown.</summary>
    public RunStatusReporter? Observe(ChatRunEvent run, DateTimeOffset now)
    {
        if (run.IsOutput)
        {
            if (_statuses.TryGetValue(run.Run.Id, out var reporter))
            {
                reporter.Output(run.Text);
            }
            return null;
        }
        if (run.Ended)
        {
            if (_statuses.TryRemove(run.Run.Id, out var ended))
            {
                ended.End(run.Run.Status, run.Run.FinishedAt ?? now);
            }
            return null;
        }
        if (run.Kind != "run.started" || run.Run.TaskId is not null || run.Channel.Progress == ChannelProgress.Off || _statuses.ContainsKey(run.Run.Id))
        {
            return null;
        }
        var started = start(run);
        _statuses[run.Run.Id] = started;
        return started;
    }
}
