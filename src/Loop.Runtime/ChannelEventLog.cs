namespace Loop.Runtime;

using Loop.Domain.Budgets;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Microsoft.Extensions.Logging;

/// <summary>Turns what channel actors report into log lines, live events and metrics.</summary>
/// <param name="runFinished">Also told of every run's end (the scheduler continues loop tasks).</param>
public sealed class ChannelEventLog(ILoopEvents hub, TimeProvider time, ILogger<ChannelEventLog> logger, Action<Run>? runFinished = null,
    LoopMetrics? metrics = null) : IChannelObserver
{
    // One line per run at info, its outcome: a burst of 10,000 task runs is 10,000 lines, not 30,000.
    public void RunQueued(Run run)
    {
        logger.LogDebug("Run {RunId} for channel {ChannelId} queued", run.Id, run.ChannelId);
        hub.Publish(new LoopEvent("run.queued", time.GetUtcNow(), run.ChannelId, run.Id, "run queued", run));
    }

    public void RunStarted(Run run)
    {
        logger.LogDebug("Run {RunId} for channel {ChannelId} started", run.Id, run.ChannelId);
        metrics?.RunStarted();
        hub.Publish(new LoopEvent("run.started", time.GetUtcNow(), run.ChannelId, run.Id, "run started", run));
    }

    public void RunOutput(string channelId, string runId, string line) =>
        hub.Publish(new LoopEvent("run.output", time.GetUtcNow(), channelId, runId, line));

    public void RunFinished(Run run, ChatMessage reply)
    {
        var elapsed = run.FinishedAt - run.StartedAt;
        if (run.Status == RunStatus.Succeeded)
        {
            logger.LogInformation("Run {RunId} for channel {ChannelId} succeeded in {ElapsedMs} ms ({InputTokens} in, {OutputTokens} out, {CostUsd} USD)",
                run.Id, run.ChannelId, elapsed?.TotalMilliseconds, run.Usage.InputTokens, run.Usage.OutputTokens, run.Usage.CostUsd);
        }
        else
        {
            // The error can quote the conversation (the agent's last words, its stderr): it is in the
            // run's record and the channel, and in the log only at debug level.
            logger.LogWarning("Run {RunId} for channel {ChannelId} ended {Status} (exit code {ExitCode}); the run's error says why",
                run.Id, run.ChannelId, run.Status.ToWire(), run.ExitCode);
            logger.LogDebug("Run {RunId} for channel {ChannelId} ended {Status}: {Error}", run.Id, run.ChannelId, run.Status.ToWire(), run.Error);
        }
        metrics?.RunFinished(run);
        var kind = run.Status == RunStatus.Succeeded ? "run.finished" : "run.error";
        hub.Publish(new LoopEvent(kind, time.GetUtcNow(), run.ChannelId, run.Id, reply.Content, run));
        runFinished?.Invoke(run);
    }

    public void BudgetNotice(Run run, BudgetNotice notice)
    {
        logger.LogInformation("Run {RunId} for channel {ChannelId}: {Notice}", run.Id, run.ChannelId, notice.Text);
        hub.Publish(new LoopEvent(notice.Spent ? "budget.spent" : "budget.warning", time.GetUtcNow(), run.ChannelId, run.Id, notice.Text));
    }

    public void Fault(string channelId, string? runId, Exception error)
    {
        logger.LogError(error, "Channel {ChannelId} failed while handling run {RunId}", channelId, runId);
        hub.Publish(new LoopEvent("channel.error", time.GetUtcNow(), channelId, runId, error.Message));
    }
}
