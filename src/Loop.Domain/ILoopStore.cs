namespace Loop.Domain;

using Loop.Domain.Accounts;
using Loop.Domain.Budgets;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;

/// <summary>The durable state of Loop. SQLite implements it on one node, PostgreSQL in a cluster.
/// Every method is atomic on its own; callers never hold a transaction.</summary>
public interface ILoopStore
{
    /// <summary>Creates the schema or upgrades it, and returns the version it is at. Safe to call on
    /// every start, by several nodes at once.</summary>
    Task<int> MigrateAsync(CancellationToken cancellationToken);

    /// <summary>A random id made when the store was created; containers carry it as a label so
    /// a daemon only ever reaps its own.</summary>
    Task<string> GetInstanceIdAsync(CancellationToken cancellationToken);

    /// <summary>Returns the channel for <paramref name="dirPath"/>, creating it with <paramref name="agent"/>
    /// if there is none (idempotent per directory: an existing channel is returned as it is). With a null
    /// dir, always creates a new channel.</summary>
    Task<(Channel Channel, bool Created)> EnsureChannelAsync(string? dirPath, string? name, ChannelAgent agent, CancellationToken cancellationToken);

    Task<Channel?> GetChannelAsync(string channelId, CancellationToken cancellationToken);

    /// <summary>The channel <see cref="Channel.TasksChannelId"/>, created (named "tasks", in its own
    /// folder) when there is none: where tasks given no channel run.</summary>
    Task<Channel> EnsureTasksChannelAsync(CancellationToken cancellationToken);

    /// <summary>Renames a channel or moves it to another directory (forgetting its session, which
    /// belongs to the old one); <see cref="ChannelWrite.DirTaken"/> when another channel has that directory.</summary>
    Task<ChannelWrite> UpdateChannelAsync(ChannelUpdate update, CancellationToken cancellationToken);

    /// <summary>Deletes a channel with its messages, runs, tasks and channel tokens in one transaction,
    /// unless it has work: a run queued or running, a message waiting for one, or a loop task running.</summary>
    Task<ChannelDeletion> DeleteChannelAsync(string channelId, CancellationToken cancellationToken);

    /// <summary>A new channel forked from <paramref name="parentId"/> (its mode, model, progress, and its
    /// session and directory as they are now), bound to a chat channel when <paramref name="externalId"/>
    /// is given; the channel already bound there, not created, when there is one. Null when the parent does not exist.
    /// A fork of a fork that works in a worktree works there too. <paramref name="worktree"/>: the fork is to work in
    /// a git worktree of its own (<see cref="SetChannelWorktreeAsync"/> records it once made).</summary>
    Task<(Channel Channel, bool Created)?> ForkChannelAsync(string parentId, string name, string? platform, string? externalId, bool worktree, CancellationToken cancellationToken);

    /// <summary>Records the git worktree a fork works in, made on its first run (null: removed).</summary>
    Task SetChannelWorktreeAsync(string channelId, ForkWorktree? worktree, CancellationToken cancellationToken);

    /// <summary>The channel bound to a chat platform's channel, creating it with <paramref name="agent"/> if there is none.</summary>
    Task<(Channel Channel, bool Created)> EnsureExternalChannelAsync(string platform, string externalId, string name, ChannelAgent agent, CancellationToken cancellationToken);

    /// <summary>The channel bound to a chat platform's channel, if any.</summary>
    Task<Channel?> FindChannelByExternalAsync(string platform, string externalId, CancellationToken cancellationToken);

    /// <summary>Binds a channel to a chat platform's channel. False when that chat channel is bound
    /// to another Loop channel already.</summary>
    Task<bool> BindChannelAsync(string channelId, string platform, string externalId, CancellationToken cancellationToken);

    /// <summary>Gives each Loop channel bound to one of these chat channels (external id → name) that
    /// chat channel's name, unless it has a project dir (then its name is its own). Returns how many changed.</summary>
    Task<int> NameChatChannelsAsync(string platform, IReadOnlyDictionary<string, string> names, CancellationToken cancellationToken);

    /// <summary>Every connector, by name.</summary>
    Task<IReadOnlyList<Connector>> ListConnectorsAsync(CancellationToken cancellationToken);

    Task<Connector?> GetConnectorAsync(string connectorId, CancellationToken cancellationToken);

    /// <summary>A connector's sealed credentials (null for one of the config file, or none).</summary>
    Task<string?> GetConnectorSecretsAsync(string connectorId, CancellationToken cancellationToken);

    Task InsertConnectorAsync(NewConnector connector, CancellationToken cancellationToken);

    /// <summary>Replaces a connector's fields (its status stays); false when it does not exist.</summary>
    Task<bool> UpdateConnectorAsync(NewConnector connector, CancellationToken cancellationToken);

    Task<bool> DeleteConnectorAsync(string connectorId, CancellationToken cancellationToken);

    /// <summary>Makes the connectors of the config file these (adding, replacing, or removing
    /// those no longer there); those through the API are left as they are.</summary>
    Task SyncConfigConnectorsAsync(IReadOnlyList<NewConnector> connectors, CancellationToken cancellationToken);

    Task SetConnectorStatusAsync(string connectorId, ConnectorStatus status, CancellationToken cancellationToken);

    /// <summary>The messages a run took (its prompt) and its reply, in id order.</summary>
    Task<IReadOnlyList<ChatMessage>> ListRunMessagesAsync(string runId, CancellationToken cancellationToken);

    /// <summary>Whether the reply of a run reached its chat platform (<see cref="MarkReplyPostedAsync"/>).</summary>
    Task<bool> IsReplyPostedAsync(string runId, CancellationToken cancellationToken);

    Task MarkReplyPostedAsync(string runId, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Records that a sender a connector does not allow is told so <paramref name="now"/>,
    /// unless they were told at or after <paramref name="toldBefore"/>: false then, and nothing changes.</summary>
    Task<bool> RecordRefusalAsync(string connectorId, string sender, DateTimeOffset now, DateTimeOffset toldBefore, CancellationToken cancellationToken);

    /// <summary>The runs of chat channels that ended at or after <paramref name="since"/> and whose reply
    /// was not posted, with the node that had them.</summary>
    Task<IReadOnlyList<UnpostedReply>> ListUnpostedRepliesAsync(DateTimeOffset since, CancellationToken cancellationToken);

    /// <summary>Makes an unposted reply this store's node's to post, if <paramref name="node"/> still has
    /// it: of the nodes that try, one gets the run, the others null.</summary>
    Task<Run?> AdoptUnpostedReplyAsync(string runId, string? node, CancellationToken cancellationToken);

    Task<IReadOnlyList<Channel>> ListChannelsAsync(CancellationToken cancellationToken);

    /// <summary>A page of channels (by created_at, then id) with what each is doing: its queue, its
    /// running run and its newest run. A fixed number of queries whatever the page size.</summary>
    Task<ChannelPage> ListChannelOverviewsAsync(ChannelListQuery query, CancellationToken cancellationToken);

    /// <summary>Keeps the agent's session id for the channel (null to forget it).</summary>
    Task SetChannelSessionAsync(string channelId, string? sessionId, CancellationToken cancellationToken);

    /// <summary>Stores a message; when this returns it is durable.</summary>
    Task<ChatMessage> AppendMessageAsync(NewMessage message, CancellationToken cancellationToken);

    /// <summary>The conversation in id order. <paramref name="afterId"/> pages forward.</summary>
    Task<IReadOnlyList<ChatMessage>> ListMessagesAsync(string channelId, long afterId, int limit, CancellationToken cancellationToken);

    /// <summary>The last <paramref name="limit"/> messages of the conversation (before
    /// <paramref name="beforeId"/> when given, to page back), in id order.</summary>
    Task<IReadOnlyList<ChatMessage>> ListLatestMessagesAsync(string channelId, long? beforeId, int limit, CancellationToken cancellationToken);

    /// <summary>What a channel actor needs to start its next run, read at once: the oldest queued
    /// task run due by <paramref name="now"/> and the pending messages, and the channel when there is
    /// either. Null when the channel does not exist but has work.</summary>
    Task<ChannelWork?> GetChannelWorkAsync(string channelId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>User messages of the channel not yet handed to a run, in arrival order.</summary>
    Task<IReadOnlyList<ChatMessage>> ListPendingMessagesAsync(string channelId, CancellationToken cancellationToken);

    /// <summary>Channels that have pending user messages (to resume work after a restart).</summary>
    Task<IReadOnlyList<string>> ListChannelsWithPendingMessagesAsync(CancellationToken cancellationToken);

    /// <summary>Creates a queued run and, in the same transaction, hands it the given pending
    /// messages. Messages that are no longer pending are not taken.</summary>
    Task<Run> CreateRunAsync(Run run, IReadOnlyList<long> messageIds, CancellationToken cancellationToken);

    /// <summary>Writes the run's status, timings and results.</summary>
    Task UpdateRunAsync(Run run, CancellationToken cancellationToken);

    /// <summary>Ends a run in one transaction: stores its <paramref name="reply"/>, writes the run's
    /// status, timings, usage and results, and keeps the <paramref name="session"/> it leaves its
    /// holder with (when it changed). Either all of it is stored or none of it, so a crash never
    /// leaves a reply beside a run that recovery would run again. Returns the stored reply. Throws
    /// <see cref="RunEndedElsewhereException"/>, storing nothing, when the run has ended already.</summary>
    Task<ChatMessage> FinishRunAsync(Run run, NewMessage reply, SessionChange? session, CancellationToken cancellationToken);

    Task<Run?> GetRunAsync(string runId, CancellationToken cancellationToken);

    /// <summary>Runs of the channel that are queued or running, oldest first.</summary>
    Task<IReadOnlyList<Run>> ListActiveRunsAsync(string channelId, CancellationToken cancellationToken);

    /// <summary>How every run that finished at or after <paramref name="since"/> ended and when, oldest finish first.</summary>
    Task<IReadOnlyList<RunTiming>> ListFinishedRunTimingsAsync(DateTimeOffset since, CancellationToken cancellationToken);

    /// <summary>The runs <paramref name="query"/> selects, newest first.</summary>
    Task<IReadOnlyList<Run>> ListRunsAsync(RunQuery query, CancellationToken cancellationToken);

    /// <summary>After a crash: marks every queued or running run failed with <paramref name="reason"/>,
    /// returns its user messages to pending (so they run again), and returns the runs as they were.
    /// Task runs claimed ahead for an instant after <paramref name="now"/> stay queued: they had not begun.
    /// With a <paramref name="node"/> (a cluster), only the runs that node had taken: those it was running
    /// and those it had queued for messages.</summary>
    Task<IReadOnlyList<Run>> FailInterruptedRunsAsync(string reason, DateTimeOffset now, string? node, CancellationToken cancellationToken);

    /// <summary>The nodes (as their stores mark the runs they take) that have runs queued or running, with how many of each.</summary>
    Task<IReadOnlyList<NodeRuns>> ListRunNodesAsync(CancellationToken cancellationToken);

    /// <summary>Moves a queued run to running; false when it is no longer queued (cancelled meanwhile).</summary>
    Task<bool> TryStartRunAsync(string runId, DateTimeOffset startedAt, CancellationToken cancellationToken);

    /// <summary>Ends a run that is still queued as cancelled; false when it is not queued any more.</summary>
    Task<bool> CancelQueuedRunAsync(string runId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Channels that have queued task runs, with each instant they are queued for (to resume
    /// work after a restart).</summary>
    Task<IReadOnlyList<QueuedTaskRuns>> ListQueuedTaskRunsAsync(CancellationToken cancellationToken);

    /// <summary>The task's runs claimed ahead of their slot and not yet due: queued for an instant after <paramref name="now"/>.</summary>
    Task<IReadOnlyList<Run>> ListRunsClaimedAheadAsync(string taskId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Stores a new task. A task made from a template that the channel has already is not
    /// stored again: the existing one comes back with Created false.</summary>
    Task<(ScheduledTask Task, bool Created)> CreateTaskAsync(ScheduledTask task, CancellationToken cancellationToken);

    Task<ScheduledTask?> GetTaskAsync(string taskId, CancellationToken cancellationToken);

    /// <summary>The tasks with the given ids that exist, in no particular order.</summary>
    Task<IReadOnlyList<ScheduledTask>> GetTasksAsync(IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken);

    /// <summary>The next due slot of every enabled task that has one, as a starting node arms them.</summary>
    Task<IReadOnlyList<TaskSlot>> ListTaskSlotsAsync(CancellationToken cancellationToken);

    /// <summary>Loop tasks in the middle of their iterations (enabled and running).</summary>
    Task<IReadOnlyList<string>> ListRunningLoopTasksAsync(CancellationToken cancellationToken);

    /// <summary>Tasks of one channel, or of all channels when <paramref name="channelId"/> is null, oldest first.</summary>
    Task<IReadOnlyList<ScheduledTask>> ListTasksAsync(string? channelId, CancellationToken cancellationToken);

    /// <summary>Writes every field of the task but its Claude session (its runs keep that, as they
    /// end), if the stored task is still at the task's <see cref="ScheduledTask.Revision"/>.</summary>
    Task<TaskWrite> UpdateTaskAsync(ScheduledTask task, CancellationToken cancellationToken);

    /// <summary>Writes the task (as the other overload does) and deletes, in the same transaction,
    /// the runs it gives back: claimed ahead for a slot the write re-decides. Stale, and nothing
    /// written, when one of them is no longer queued.</summary>
    Task<TaskWrite> UpdateTaskAsync(ScheduledTask task, IReadOnlyCollection<string> withdrawnRuns, CancellationToken cancellationToken);

    Task<bool> DeleteTaskAsync(string taskId, CancellationToken cancellationToken);

    /// <summary>Keeps the Claude session of a task that runs in its own context (null to forget it).</summary>
    Task SetTaskSessionAsync(string taskId, string? sessionId, CancellationToken cancellationToken);

    /// <summary>Claim-and-advance, for a batch of due slots in one transaction: each firing whose
    /// task is still enabled, at its revision, with next_run_at = DueAt gets next_run_at = NextRunAt
    /// and last_run_at = now (and its revision moves on by one), and its run is queued. Firings whose
    /// task was written meanwhile are skipped, so no slot fires twice whatever the number of
    /// claimers. Returns the firings claimed.</summary>
    Task<IReadOnlyList<TaskFiring>> ClaimTaskFiringsAsync(IReadOnlyList<TaskFiring> firings, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Queues a run of a task and writes the task's new state, in one transaction (loop
    /// iterations); <see cref="TaskWrite.Stale"/> or <see cref="TaskWrite.Missing"/> and nothing queued when the task cannot be written.</summary>
    Task<TaskWrite> QueueTaskRunAsync(Run run, ScheduledTask task, CancellationToken cancellationToken);

    /// <summary>Reads the store afresh (never a remembered answer), for health checks; throws
    /// <see cref="StoreUnavailableException"/> saying what is wrong when it cannot.</summary>
    Task PingAsync(CancellationToken cancellationToken);

    /// <summary>Usage of the finished runs that <paramref name="query"/> selects; runs that reported
    /// tokens but no cost are priced with <paramref name="prices"/>.</summary>
    Task<UsageTotals> GetUsageTotalsAsync(UsageQuery query, PriceTable prices, CancellationToken cancellationToken);

    /// <summary>Usage of the selected finished runs per day, model, channel or task, ordered by key.</summary>
    Task<IReadOnlyList<UsageGroup>> GetUsageGroupsAsync(UsageGrouping by, UsageQuery query, PriceTable prices, CancellationToken cancellationToken);

    /// <summary>Selected finished runs that used tokens or cost something, newest first;
    /// <paramref name="beforeRunId"/> pages back.</summary>
    Task<IReadOnlyList<UsageCall>> ListUsageCallsAsync(UsageQuery query, PriceTable prices, int limit, string? beforeRunId, CancellationToken cancellationToken);

    /// <summary>Who may do what through a connector; <see cref="ChatRoles.None"/> when not configured.</summary>
    Task<ChatRoles> GetChatRolesAsync(string connectorId, CancellationToken cancellationToken);

    /// <summary>Stores a connector's roles, replacing what it had; no owners and no members removes them.</summary>
    Task SetChatRolesAsync(string connectorId, ChatRoles roles, CancellationToken cancellationToken);

    // Budgets of channels, tasks and connectors.

    /// <summary>The stored budgets among <paramref name="keys"/>.</summary>
    Task<IReadOnlyList<Budget>> GetBudgetsAsync(IReadOnlyList<BudgetKey> keys, CancellationToken cancellationToken);

    Task<IReadOnlyList<Budget>> ListBudgetsAsync(CancellationToken cancellationToken);

    /// <summary>Stores a scope's limits, replacing what it had; limits that are both null remove its budget.</summary>
    Task SetBudgetAsync(Budget budget, CancellationToken cancellationToken);

    /// <summary>Records that <paramref name="notice"/> was given for a budget; false when it was already.</summary>
    Task<bool> ClaimBudgetNoticeAsync(BudgetKey key, string notice, DateTimeOffset at, CancellationToken cancellationToken);

    // Accounts, sessions and API tokens. Tokens are stored only as SHA-256 hashes.

    Task<int> CountUsersAsync(CancellationToken cancellationToken);

    /// <summary>Stores the first account; false (and nothing stored) when an account exists already.</summary>
    Task<bool> CreateFirstUserAsync(UserAccount user, CancellationToken cancellationToken);

    Task<UserAccount?> FindUserByNameAsync(string username, CancellationToken cancellationToken);

    Task<UserAccount?> GetUserAsync(string userId, CancellationToken cancellationToken);

    /// <summary>Every account, oldest first.</summary>
    Task<IReadOnlyList<UserAccount>> ListUsersAsync(CancellationToken cancellationToken);

    /// <summary>Stores another account; false (and nothing stored) when its username is taken.</summary>
    Task<bool> CreateUserAsync(UserAccount user, CancellationToken cancellationToken);

    /// <summary>Changes an account's role; refused when it would leave no admin.</summary>
    Task<UserChange> SetUserRoleAsync(string userId, UserRole role, CancellationToken cancellationToken);

    /// <summary>Replaces an account's password and ends its sessions, all but
    /// <paramref name="keepSessionHash"/> (the one changing it); false when there is no such account.</summary>
    Task<bool> SetUserPasswordAsync(string userId, string passwordHash, string? keepSessionHash, CancellationToken cancellationToken);

    /// <summary>Deletes an account with its sessions and API tokens; refused when it is the last admin.</summary>
    Task<UserChange> DeleteUserAsync(string userId, CancellationToken cancellationToken);

    Task CreateSessionAsync(UserSession session, CancellationToken cancellationToken);

    Task<UserSession?> GetSessionAsync(string tokenHash, CancellationToken cancellationToken);

    Task ExtendSessionAsync(string tokenHash, DateTimeOffset expiresAt, CancellationToken cancellationToken);

    Task DeleteSessionAsync(string tokenHash, CancellationToken cancellationToken);

    Task CreateApiTokenAsync(ApiToken token, CancellationToken cancellationToken);

    Task<ApiToken?> FindApiTokenAsync(string tokenHash, CancellationToken cancellationToken);

    /// <summary>The user tokens (not the local machine tokens), oldest first.</summary>
    Task<IReadOnlyList<ApiToken>> ListApiTokensAsync(CancellationToken cancellationToken);

    Task<bool> DeleteApiTokenAsync(string tokenId, CancellationToken cancellationToken);

    /// <summary>Revokes every stored token scoped to <paramref name="channelId"/>; returns how many.</summary>
    Task<int> DeleteChannelApiTokensAsync(string channelId, CancellationToken cancellationToken);

    /// <summary>Replaces the local machine token named <paramref name="token"/>.Name (one per node).</summary>
    Task ReplaceLocalTokenAsync(ApiToken token, CancellationToken cancellationToken);

    Task TouchApiTokenAsync(string tokenId, DateTimeOffset usedAt, CancellationToken cancellationToken);
}

/// <summary>A run cannot be finished: it ended elsewhere meanwhile (its node was declared dead, and
/// another node reported it and ran its messages again). Nothing of the late finish is stored.</summary>
public sealed class RunEndedElsewhereException(string runId)
    : Exception($"run {runId} was ended elsewhere while it ran here (this node was taken for dead); its late result is not stored");

/// <summary>The store cannot be read: its message says why, in words for an operator.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Who keeps the Claude session a run continues: the channel's chat, or a task that runs
/// in its own context.</summary>
public enum SessionHolder
{
    Channel,
    Task,
}

/// <summary>The session id a finished run leaves its holder (the channel or task <see cref="HolderId"/>) with.</summary>
public sealed record SessionChange(SessionHolder Holder, string HolderId, string SessionId);

/// <summary>An ended run of a chat channel whose reply has not reached the chat, and the node that had it.</summary>
public sealed record UnpostedReply(string RunId, string? Node);

/// <summary>How many runs a node has taken that are still running or queued.</summary>
public sealed record NodeRuns(string Node, int Running, int Queued);

/// <summary>What changes in a channel: each field that is not null. A new <see cref="DirPath"/> or
/// <see cref="Mode"/> forgets its session; <see cref="Model"/> "" goes back to the configured model.</summary>
public sealed record ChannelUpdate(string ChannelId, DateTimeOffset At, string? Name = null, string? DirPath = null,
    ChannelMode? Mode = null, string? Model = null, ChannelProgress? Progress = null);

public enum ChannelWrite
{
    Written,
    Missing,
    DirTaken,
}

/// <summary>How a channel's deletion went: done (with the ids of the tasks deleted with it), missing,
/// or refused because of <see cref="Busy"/> (what the channel is doing, in words).</summary>
public sealed record ChannelDeletion(bool Deleted, IReadOnlyList<string> TaskIds, string? Busy)
{
    public static readonly ChannelDeletion Missing = new(false, [], null);
}

/// <summary>A channel's next work; <see cref="Channel"/> is null when there is none.</summary>
/// <summary>A channel's queued task runs for one instant.</summary>
public sealed record QueuedTaskRuns(string ChannelId, DateTimeOffset DueAt);

public sealed record ChannelWork(Channel? Channel, Run? QueuedTaskRun, IReadOnlyList<ChatMessage> Pending);

/// <summary>Which channels to list: those whose name or directory contains <see cref="Search"/>
/// (ignoring case), of <see cref="ChannelIds"/> only when given, <see cref="Limit"/> of them (all
/// when null) after skipping <see cref="Offset"/>.</summary>
public sealed record ChannelListQuery(
    string? Search = null,
    IReadOnlyCollection<string>? ChannelIds = null,
    int? Limit = null,
    int Offset = 0);

/// <summary>Which runs to list, newest first: of a channel, of a task and in a status when given,
/// <see cref="Limit"/> of them older than <see cref="BeforeRunId"/> (to page back).</summary>
public sealed record RunQuery(
    int Limit,
    string? ChannelId = null,
    string? TaskId = null,
    RunStatus? Status = null,
    string? BeforeRunId = null);

/// <summary>One page of channels and how many match the query in all.</summary>
public sealed record ChannelPage(IReadOnlyList<ChannelOverview> Channels, int Total);

/// <summary>A channel and its work: <see cref="Queued"/> counts user messages not yet taken by a
/// run plus queued runs; <see cref="RunningRunId"/> is its run with status running, if any.</summary>
public sealed record ChannelOverview(Channel Channel, int Queued, string? RunningRunId, RunSummary? LastRun);

/// <summary>The outline of a run, as lists of channels show their newest one.</summary>
public sealed record RunSummary(string Id, RunStatus Status, DateTimeOffset CreatedAt, DateTimeOffset? FinishedAt);

/// <summary>When a finished run started (null if it never did) and ended, and how.</summary>
public sealed record RunTiming(string Id, RunStatus Status, DateTimeOffset? StartedAt, DateTimeOffset FinishedAt);
