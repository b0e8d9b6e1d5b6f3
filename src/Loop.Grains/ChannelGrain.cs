namespace Loop.Grains;

using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Runtime;

/// <summary>
/// Hosts one channel's <see cref="ChannelRuns"/>. A wake-up starts draining the channel's work
/// unless a drain is under way; one that comes during a drain makes it look again before it ends,
/// so no message waits for a drain that has finished. The drain runs on this activation's scheduler
/// but outside any call: the grain keeps answering while the agent works.
/// </summary>
public sealed class ChannelGrain(ChannelRunsFactory runsFactory, LiveChannels live) : Grain, IChannelGrain
{
    private readonly CancellationTokenSource _stopping = new();
    private ChannelRuns _runs = null!;
    private Task _drain = Task.CompletedTask;
    private bool _wokenDuringDrain;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _runs = runsFactory.For(this.GetPrimaryKeyString());
        live.Activated(_runs);
        return Task.CompletedTask;
    }

    public Task Wake()
    {
        if (!_drain.IsCompleted)
        {
            _wokenDuringDrain = true;
            return Task.CompletedTask;
        }
        _drain = DrainAsync();
        return Task.CompletedTask;
    }

    private async Task DrainAsync()
    {
        // A run can outlast any idle limit: the activation stays while there is work.
        DelayDeactivation(Timeout.InfiniteTimeSpan);
        try
        {
            do
            {
                _wokenDuringDrain = false;
                await _runs.DrainAsync(_stopping.Token);
            }
            while (_wokenDuringDrain && !_stopping.IsCancellationRequested);
        }
        finally
        {
            DelayDeactivation(TimeSpan.Zero);
        }
    }

    public async Task<bool> CancelRun(string runId) =>
        _runs.TryCancel(runId) || await _runs.CancelQueuedAsync(runId, _stopping.Token);

    public async Task<SessionReset> ResetSession()
    {
        // The session is taken by a run when it starts and handed back when it ends: a reset in
        // between would be undone.
        if (await _runs.BusyRunAsync(_stopping.Token) is { } busy)
        {
            return new SessionReset(false, busy.Id, busy.Status.ToWire());
        }
        if (!_drain.IsCompleted)
        {
            return new SessionReset(false, null, null); // about to take one
        }
        await _runs.ResetSessionAsync(_stopping.Token);
        return new SessionReset(true, null, null);
    }

    public async Task<WorktreeRemoval> RemoveWorktree(bool force)
    {
        // A run works in the worktree: removing it under the agent would lose its work.
        if (await _runs.BusyRunAsync(_stopping.Token) is { } busy)
        {
            return new WorktreeRemoval(false, busy.Id, busy.Status.ToWire(), null);
        }
        if (!_drain.IsCompleted)
        {
            return new WorktreeRemoval(false, null, null, null); // about to start one
        }
        var kept = await _runs.RemoveWorktreeAsync(force, _stopping.Token);
        return new WorktreeRemoval(kept is null, null, null, kept);
    }

    public Task<ChannelStatus> GetStatus() => Task.FromResult(new ChannelStatus(_runs.ChannelId, _runs.ActiveRunId));

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // The node is stopping (idle channels have no drain): a run cut short stays as it is in the
        // store, and start-up recovery reports it and queues its messages again.
        await _stopping.CancelAsync();
        await _drain;
        live.Deactivated(_runs);
        _stopping.Dispose();
    }
}
