namespace Loop.Domain.Channels;

using Loop.Domain.Budgets;
using Loop.Domain.Runs;

/// <summary>The bounded pool of agent slots shared by all channels. Waiters are served in the
/// order they asked, so no channel starves another.</summary>
public interface IRunSlots
{
    ValueTask<IDisposable> AcquireAsync(string channelId, CancellationToken cancellationToken);
}

/// <summary>What a channel actor tells the outside world: logs, the live feed, chat adapters
/// that post replies. Implementations must not throw and must return quickly.</summary>
public interface IChannelObserver
{
    void RunQueued(Run run);
    void RunStarted(Run run);
    void RunOutput(string channelId, string runId, string line);
    void RunFinished(Run run, ChatMessage reply);

    /// <summary>A run brought its channel, task or connector to 80% of a budget, or spent it.</summary>
    void BudgetNotice(Run run, BudgetNotice notice);
    void Fault(string channelId, string? runId, Exception error);
}
