namespace Loop.Grains;

using Loop.Config;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Budgets;
using Loop.Domain.Channels;

/// <summary>Makes the <see cref="ChannelRuns"/> of a channel grain from the node's parts: its
/// store, its slots, agents run by the node's <see cref="IContainerWorker"/>, and <paramref name="directRunner"/>
/// for channels in direct mode (it runs on the channel's own grain: no container, no slot).</summary>
public sealed class ChannelRunsFactory(ILoopStore store, IGrainFactory grains, ContainerRuns containers, IRunSlots slots, IChannelObserver observer, TimeProvider time, LoopPaths paths,
    IAgentRunner directRunner, BudgetGuard budgets, IForkWorktrees worktrees)
{
    private readonly ContainerWorkerClient _runner = new(grains, containers);

    public ChannelRuns For(string channelId) =>
        new(channelId, new ChannelRunsContext(store, _runner, slots, observer, time,
            paths.WorkDirOf, PromptFiles.Read, directRunner, budgets, worktrees));
}
