namespace Loop.Runtime;

using Loop.Config;
using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Loop.Grains;

/// <summary>
/// What front ends (REST, MCP, chat adapters) may do with channels, messages and runs. They call
/// this and nothing below it: it validates, stores what people send, and leaves every change of a
/// channel's state to the channel's grain.
/// </summary>
public sealed class ChannelService(ILoopStore store, IGrainFactory grains, ChannelTokens tokens, AuthService auth, ProjectDirs projectDirs, LoopPaths paths, TimeProvider time,
    GitWorktrees worktrees, ILoopEvents? events = null, LoopMetrics? metrics = null)
{
    /// <summary>Told of every channel newly registered for a directory (chat adapters bind one to it).</summary>
    public event Func<Channel, CancellationToken, Task>? Registered;

    public const int MaxMessageLength = 100_000;
    public const int MaxPageSize = 500;

    public Task<(Channel Channel, bool Created)> EnsureChannelAsync(Caller caller, string? dirPath, string? name, CancellationToken cancellationToken) =>
        EnsureChannelAsync(caller, dirPath, name, mode: null, model: null, cancellationToken);

    /// <summary>The channel of a directory (a new one without <paramref name="dirPath"/>), registered
    /// with <paramref name="mode"/> and <paramref name="model"/> when new. Asking for another mode or
    /// model than an existing channel of the directory has is a conflict, not a silent change.</summary>
    public async Task<(Channel Channel, bool Created)> EnsureChannelAsync(Caller caller, string? dirPath, string? name, string? mode, string? model,
        CancellationToken cancellationToken)
    {
        caller.EnsureUser("register channels");
        if (dirPath is not null)
        {
            CheckDir(dirPath);
        }
        CheckName(name);
        var agent = AgentOf(mode, model);
        var (channel, created) = await store.EnsureChannelAsync(dirPath, name, agent, cancellationToken);
        if (!created && ((mode is not null && channel.Mode != agent.Mode) || (model is not null && channel.Model != agent.Model)))
        {
            throw new LoopConflictException($"channel {channel.Id} of {dirPath} exists already with mode \"{channel.Mode.ToWire()}\" and "
                + (channel.Model is null ? "the configured model" : $"model \"{channel.Model}\"") + ": use that channel as it is, or register a channel without dir_path");
        }
        if (created && Registered is { } registered)
        {
            await registered(channel, cancellationToken);
            channel = await store.GetChannelAsync(channel.Id, cancellationToken) ?? channel;
        }
        return (channel, created);
    }

    private void CheckDir(string dirPath)
    {
        if (string.IsNullOrWhiteSpace(dirPath) || !Path.IsPathFullyQualified(dirPath))
        {
            throw new LoopValidationException("dir_path", $"dir_path must be an absolute path, like /home/me/project (got '{dirPath}')");
        }
        if (!Directory.Exists(dirPath))
        {
            throw new LoopValidationException("dir_path", $"dir_path {dirPath} does not exist or is not a directory; create it first");
        }
        // Judged by where it really leads, symlinks followed (as Docker follows them), and again
        // before each run. Kept as given, so channels registered before keep being found by it.
        if (projectDirs.Check(dirPath).Refusal is { } refusal)
        {
            throw new LoopValidationException("dir_path", refusal);
        }
    }

    private static void CheckName(string? name)
    {
        if (name is not null && (name.Trim().Length is 0 || name.Length > 100))
        {
            throw new LoopValidationException("name", "name must be 1 to 100 characters");
        }
    }

    /// <summary>Renames a channel, moves it to another project directory or changes where and with which
    /// model its agent runs. A move or a new mode forgets the channel's Claude session (it belongs to the old
    /// directory, or to the other runner) and is refused while a run is queued or running.</summary>
    public async Task<ChannelOverview> UpdateChannelAsync(Caller caller, string channelId, ChannelChange change, CancellationToken cancellationToken)
    {
        caller.EnsureUser("change channels");
        var channel = await GetChannelAsync(caller, channelId, cancellationToken);
        CheckName(change.Name);
        if (change.DirPath is not null)
        {
            CheckDir(change.DirPath);
        }
        var mode = ModeOf(change.Mode);
        // "" goes back to the configured model (null in the store).
        var model = change.Model?.Trim();
        if (model is { Length: > 0 })
        {
            CheckModel(model);
        }
        var progress = ProgressOf(change.Progress);
        var moves = change.DirPath is not null && change.DirPath != channel.DirPath;
        var switches = mode is not null && mode != channel.Mode;
        if ((moves || switches) && (await store.ListActiveRunsAsync(channelId, cancellationToken)).FirstOrDefault() is { } busy)
        {
            throw new LoopConflictException($"channel {channelId} has a run {busy.Status.ToWire()} ({busy.Id}): wait for it to end or cancel it (POST /api/runs/{busy.Id}/cancel), then "
                + (moves ? "move the channel" : "change its mode"));
        }
        var update = new ChannelUpdate(channelId, time.GetUtcNow(), change.Name?.Trim(), change.DirPath, mode, model, progress);
        switch (await store.UpdateChannelAsync(update, cancellationToken))
        {
            case ChannelWrite.Missing:
                throw new LoopNotFoundException($"channel {channelId} does not exist");
            case ChannelWrite.DirTaken:
                throw new LoopConflictException($"another channel works in {change.DirPath} already: each directory has one channel (find it with GET /api/channels?q=...)");
        }
        var what = new List<string>();
        if (change.Name is not null && change.Name.Trim() != channel.Name)
        {
            what.Add("renamed");
        }
        if (moves)
        {
            what.Add($"moved to {change.DirPath}");
        }
        if (switches)
        {
            what.Add($"now runs its agent {(mode == ChannelMode.Direct ? "directly through the Anthropic API" : "in a container")}");
        }
        if (model is not null && (model.Length > 0 ? model : null) != channel.Model)
        {
            what.Add(model.Length > 0 ? $"uses model {model}" : "uses the configured model");
        }
        if (progress is { } shown && shown != channel.Progress)
        {
            what.Add(shown == ChannelProgress.Off ? "shows no progress while it works" : $"shows its progress ({shown.ToWire()}) while it works");
        }
        events?.Publish(new LoopEvent("channel.changed", time.GetUtcNow(), channelId, null,
            $"channel {(what.Count == 0 ? "unchanged" : string.Join(", ", what))}{(moves || switches ? ": its next run starts a new conversation" : "")}"));
        return await GetChannelOverviewAsync(caller, channelId, cancellationToken);
    }

    /// <summary>Deletes a channel with its messages, runs, tasks and tokens; refused while it has work.
    /// Its project directory is left as it is.</summary>
    public async Task DeleteChannelAsync(Caller caller, string channelId, CancellationToken cancellationToken)
    {
        caller.EnsureUser("delete channels");
        var worktree = (await store.GetChannelAsync(channelId, cancellationToken))?.Fork?.Worktree;
        var deletion = await store.DeleteChannelAsync(channelId, cancellationToken);
        if (!deletion.Deleted)
        {
            throw deletion.Busy is { } busy
                ? new LoopConflictException($"channel {channelId} is busy: {busy}; wait for its work to end (or cancel it), then delete it")
                : new LoopNotFoundException($"channel {channelId} does not exist");
        }
        foreach (var taskId in deletion.TaskIds)
        {
            await grains.GetGrain<ITaskGrain>(taskId).Arm(); // finds the task gone: drops its reminder and timetable entry
        }
        tokens.RevokeChannel(channelId);
        var state = paths.ClaudeStateDir(channelId);
        if (Directory.Exists(state))
        {
            Directory.Delete(state, recursive: true);
        }
        events?.Publish(new LoopEvent("channel.deleted", time.GetUtcNow(), channelId, null,
            $"channel deleted with its messages, runs and {deletion.TaskIds.Count} task(s)"));
        if (worktree is not null)
        {
            // A fork's worktree goes with it, unless it holds work not committed: that is never thrown away unasked.
            var kept = await worktrees.RemoveAsync(worktree, force: false, cancellationToken);
            events?.Publish(new LoopEvent(kept is null ? "channel.worktree_removed" : "channel.worktree_kept", time.GetUtcNow(), channelId, null, kept is null
                ? $"git worktree {worktree.Path} removed with the channel (branch {worktree.Branch} kept)"
                : $"git worktree {worktree.Path} kept: {kept}; remove it with git worktree remove when done with it"));
        }
    }

    /// <summary>Stores a message from a chat platform in the Loop channel bound to its chat channel
    /// (registering one on first contact), then wakes that channel.</summary>
    public async Task<(Channel Channel, ChatMessage Message)> PostChatMessageAsync(ChatInbound inbound, CancellationToken cancellationToken)
    {
        ValidateMessage(inbound.Author, inbound.Content);
        var channel = await EnsureChatChannelAsync(inbound.Platform, inbound.ExternalChannelId, inbound.ChannelName, cancellationToken);
        var message = await store.AppendMessageAsync(
            new NewMessage(channel.Id, MessageRole.User, inbound.Author, inbound.Content, ExternalId: inbound.ExternalMessageId, Sender: inbound.Sender), cancellationToken);
        Received(message, ConnectorSpec.Wire(inbound.Kind));
        await grains.GetGrain<IChannelGrain>(channel.Id).Wake();
        return (channel, message);
    }

    /// <summary>The Loop channel bound to a chat channel, registering one on first contact with the mode
    /// and model of the connector it came through (<paramref name="platform"/> is the connector's id).</summary>
    public async Task<Channel> EnsureChatChannelAsync(string platform, string externalId, string name, CancellationToken cancellationToken)
    {
        if (await store.FindChannelByExternalAsync(platform, externalId, cancellationToken) is { } known)
        {
            return known;
        }
        var agent = (await store.GetConnectorAsync(platform, cancellationToken))?.Agent ?? ChannelAgent.Default;
        return (await store.EnsureExternalChannelAsync(platform, externalId, name, agent, cancellationToken)).Channel;
    }

    /// <summary>A new channel that starts from <paramref name="parentId"/>'s conversation as it is now and
    /// goes its own way: its first run forks the parent's Claude session, which stays as it was.
    /// With <paramref name="worktree"/>, the fork works in a git worktree of its own of the parent's repository, made
    /// on its first run: the parent must work in a directory of a git repository.</summary>
    public async Task<Channel> ForkAsync(Caller caller, string parentId, string? name, bool worktree, CancellationToken cancellationToken)
    {
        caller.EnsureUser("fork a channel");
        CheckName(name);
        var parent = await GetChannelAsync(caller, parentId, cancellationToken);
        return await ForkAsync(parent, name?.Trim() ?? $"{parent.Name}-fork", null, null, worktree, cancellationToken);
    }

    /// <summary>Checked when the fork is made, so the person asking hears at once what their first run would fail on.</summary>
    private async Task CheckWorktreeOfAsync(Channel parent, CancellationToken cancellationToken)
    {
        if (parent.Mode == ChannelMode.Direct)
        {
            throw new LoopValidationException("worktree", $"channel {parent.Id} runs its agent directly through the Anthropic API, with no files: its forks have no use for a worktree; fork it without one");
        }
        var dir = parent.DirPath ?? parent.Fork?.Worktree?.WorkDir ?? parent.Fork?.DirPath
            ?? throw new LoopConflictException($"channel {parent.Id} works in a folder of its own, not in a project directory: there is no git repository to make a worktree of. "
                + "Fork it without a worktree, or fork a channel registered with a dir_path in a git repository");
        try
        {
            await worktrees.RepositoryOfAsync(dir, cancellationToken);
        }
        catch (ForkWorktreeException problem)
        {
            throw new LoopValidationException("worktree", $"cannot fork channel {parent.Id} with a worktree: {problem.Message}");
        }
    }

    /// <summary>Removes the git worktree a fork works in. Refused while a run of it is queued or running, and, unless
    /// <paramref name="force"/>, while the worktree has changes not committed. Its branch stays: the fork's next run
    /// makes the worktree again on it.</summary>
    public async Task<ChannelOverview> RemoveWorktreeAsync(Caller caller, string channelId, bool force, CancellationToken cancellationToken)
    {
        caller.EnsureUser("remove worktrees");
        var channel = await GetChannelAsync(caller, channelId, cancellationToken);
        if (channel.Fork?.Worktree is not { } worktree)
        {
            throw new LoopConflictException(channel.Fork?.WantsWorktree == true
                ? $"channel {channelId} has no git worktree yet: its next run makes one"
                : $"channel {channelId} works in no git worktree of its own: only a fork made with \"worktree\": true does");
        }
        var removal = await grains.GetGrain<IChannelGrain>(channelId).RemoveWorktree(force);
        if (!removal.Done)
        {
            throw new LoopConflictException(removal.Kept is { } kept
                ? $"the git worktree {worktree.Path} of channel {channelId} was kept: {kept}" + (force ? "" : $". Commit them, or remove it anyway "
                    + $"with force=true (loop channels worktree remove {channelId} --force), which loses what is not committed")
                : removal.BusyRunId is { } runId
                    ? $"channel {channelId} has a run {removal.BusyStatus} ({runId}) in its worktree: wait for it to end or cancel it (POST /api/runs/{runId}/cancel), then remove the worktree"
                    : $"channel {channelId} is starting a run in its worktree: wait for it to end, then remove the worktree");
        }
        events?.Publish(new LoopEvent("channel.worktree_removed", time.GetUtcNow(), channelId, null,
            $"git worktree {worktree.Path} removed{(force ? " with any changes it had" : "")}; branch {worktree.Branch} kept"));
        return await GetChannelOverviewAsync(caller, channelId, cancellationToken);
    }

    /// <summary>The Loop channel of a chat thread started in a chat channel: a fork of that channel's Loop
    /// channel, made once. Null when the chat channel has no Loop channel (nothing to fork).</summary>
    public async Task<Channel?> ForkChatChannelAsync(string platform, string parentExternalId, string threadExternalId, string name, CancellationToken cancellationToken,
        bool worktree = false)
    {
        if (await store.FindChannelByExternalAsync(platform, threadExternalId, cancellationToken) is { } known)
        {
            return known;
        }
        return await store.FindChannelByExternalAsync(platform, parentExternalId, cancellationToken) is { } parent
            ? await ForkAsync(parent, name, platform, threadExternalId, worktree, cancellationToken)
            : null;
    }

    /// <summary>Refuses (as forking would) to fork this channel with a worktree when it cannot have one: a chat
    /// adapter asks before it starts a thread for the fork.</summary>
    public async Task CheckWorktreeForkAsync(Caller caller, string parentId, CancellationToken cancellationToken) =>
        await CheckWorktreeOfAsync(await GetChannelAsync(caller, parentId, cancellationToken), cancellationToken);

    private async Task<Channel> ForkAsync(Channel parent, string name, string? platform, string? externalId, bool worktree, CancellationToken cancellationToken)
    {
        if (worktree)
        {
            await CheckWorktreeOfAsync(parent, cancellationToken);
        }
        var (fork, created) = await store.ForkChannelAsync(parent.Id, name, platform, externalId, worktree, cancellationToken)
            ?? throw new LoopNotFoundException($"channel {parent.Id} does not exist");
        if (created)
        {
            events?.Publish(new LoopEvent("channel.forked", time.GetUtcNow(), fork.Id, null,
                $"channel {fork.Name} forked from {parent.Name}" + (fork.Fork?.SessionId is null ? " (which had no conversation yet)" : "")
                + (fork.Fork?.WantsWorktree == true ? "; it works in a git worktree of its own, made on its first run" : "")));
        }
        return fork;
    }

    /// <summary>The directory a channel's agent works in: its project, else its own folder under the Loop home.</summary>
    public string WorkDirOf(Channel channel) => paths.WorkDirOf(channel);

    public Task<Channel?> FindChatChannelAsync(string platform, string externalId, CancellationToken cancellationToken) =>
        store.FindChannelByExternalAsync(platform, externalId, cancellationToken);

    /// <summary>Names the Loop channels of these chat channels (external id → name) after them: a chat
    /// channel first seen before its name was known, or renamed since. Channels of a project dir keep theirs.</summary>
    public Task<int> NameChatChannelsAsync(string platform, IReadOnlyDictionary<string, string> names, CancellationToken cancellationToken) =>
        names.Count == 0 ? Task.FromResult(0) : store.NameChatChannelsAsync(platform, names, cancellationToken);

    /// <summary>Binds a Loop channel to a chat channel; false when that chat channel belongs to another one.</summary>
    public Task<bool> BindChatChannelAsync(string channelId, string platform, string externalId, CancellationToken cancellationToken) =>
        store.BindChannelAsync(channelId, platform, externalId, cancellationToken);

    /// <summary>The messages a run answered (oldest first) and its reply.</summary>
    public Task<IReadOnlyList<ChatMessage>> ListRunMessagesAsync(string runId, CancellationToken cancellationToken) =>
        store.ListRunMessagesAsync(runId, cancellationToken);

    /// <summary>Whether a run answers only messages <paramref name="sender"/> wrote (and some): stopping it then
    /// drops no one else's request. A run of scheduled work answers no message, so it is nobody's.</summary>
    public async Task<bool> IsRunOfAsync(string runId, string sender, CancellationToken cancellationToken)
    {
        var asked = (await store.ListRunMessagesAsync(runId, cancellationToken)).Where(m => m.Role == MessageRole.User).ToList();
        return asked.Count > 0 && asked.All(m => m.Sender == sender);
    }

    /// <summary>What a chat shows when a run ends: its reply (or <paramref name="fallback"/> when it
    /// stored none) and the platform's id of the last message it answered, to reply to.</summary>
    public async Task<RunAnswer> GetRunAnswerAsync(string runId, string fallback, CancellationToken cancellationToken)
    {
        var messages = await store.ListRunMessagesAsync(runId, cancellationToken);
        return new RunAnswer(
            messages.LastOrDefault(m => m.Role != MessageRole.User)?.Content ?? fallback,
            messages.LastOrDefault(m => m.Role == MessageRole.User && m.ExternalId is not null)?.ExternalId);
    }

    /// <summary>Posts the reply of an ended run to its chat with <paramref name="post"/> unless that was
    /// done already, and records it once posted: a node that dies before then leaves it to the node
    /// that takes over (<see cref="NodeLifecycle"/>). False when it had been posted.</summary>
    public async Task<bool> PostReplyOnceAsync(string runId, Func<CancellationToken, Task> post, CancellationToken cancellationToken)
    {
        if (await store.IsReplyPostedAsync(runId, cancellationToken))
        {
            return false;
        }
        await post(cancellationToken);
        await store.MarkReplyPostedAsync(runId, time.GetUtcNow(), cancellationToken);
        return true;
    }

    /// <summary>Whether a sender the connector does not allow is to be told so now: once per
    /// <paramref name="every"/>, whichever node takes their messages and across restarts.</summary>
    public Task<bool> TellStrangerAsync(string connectorId, string sender, DateTimeOffset now, TimeSpan every, CancellationToken cancellationToken) =>
        store.RecordRefusalAsync(connectorId, sender, now, now - every, cancellationToken);

    public async Task<Channel> GetChannelAsync(Caller caller, string channelId, CancellationToken cancellationToken)
    {
        caller.EnsureCanAccess(channelId);
        return await store.GetChannelAsync(channelId, cancellationToken)
            ?? throw new LoopNotFoundException($"channel {channelId} does not exist");
    }

    /// <summary>A page of channels (oldest first) with their queues and runs; <paramref name="search"/>
    /// matches a part of the name or directory, ignoring case. A channel token sees its own channel only.</summary>
    public Task<ChannelPage> ListChannelOverviewsAsync(Caller caller, string? search, int? limit, int offset, CancellationToken cancellationToken)
    {
        if (limit is { } size)
        {
            ClampPage(size);
        }
        if (offset < 0)
        {
            throw new LoopValidationException("offset", $"offset must be 0 or more (found {offset})");
        }
        var only = caller.ChannelId is { } own ? new[] { own } : null;
        return store.ListChannelOverviewsAsync(new ChannelListQuery(search, only, limit, offset), cancellationToken);
    }

    /// <summary>Forgets the channel's Claude session, so its next run starts a fresh conversation.
    /// Refused while a run is queued or running: that run has taken the session already and would
    /// hand it back when it ends.</summary>
    public async Task<ChannelOverview> ResetSessionAsync(Caller caller, string channelId, CancellationToken cancellationToken)
    {
        await GetChannelAsync(caller, channelId, cancellationToken);
        var reset = await grains.GetGrain<IChannelGrain>(channelId).ResetSession();
        if (!reset.Done)
        {
            throw new LoopConflictException(reset.BusyRunId is { } runId
                ? $"channel {channelId} has a run {reset.BusyStatus} ({runId}): wait for it to end or cancel it (POST /api/runs/{runId}/cancel), then reset the session"
                : $"channel {channelId} is starting a run: wait for it to end, then reset the session");
        }
        events?.Publish(new LoopEvent("channel.session_reset", time.GetUtcNow(), channelId, null,
            "session reset: the next run starts a new conversation"));
        return await GetChannelOverviewAsync(caller, channelId, cancellationToken);
    }

    /// <summary>The channel with its queue and runs.</summary>
    public async Task<ChannelOverview> GetChannelOverviewAsync(Caller caller, string channelId, CancellationToken cancellationToken)
    {
        caller.EnsureCanAccess(channelId);
        var page = await store.ListChannelOverviewsAsync(new ChannelListQuery(ChannelIds: [channelId]), cancellationToken);
        return page.Channels.SingleOrDefault() ?? throw new LoopNotFoundException($"channel {channelId} does not exist");
    }

    /// <summary>A new bearer token that gives an MCP server (or script) access to this channel only.</summary>
    public async Task<string> CreateChannelTokenAsync(Caller caller, AuthPrincipal owner, string channelId, CancellationToken cancellationToken)
    {
        caller.EnsureUser("hand out channel tokens");
        await GetChannelAsync(caller, channelId, cancellationToken);
        return await auth.CreateChannelTokenAsync(channelId, owner, cancellationToken);
    }

    /// <summary>Ends every credential of the channel at once: the tokens of its running agents and
    /// those handed out for scripts. Returns how many were revoked.</summary>
    public async Task<int> RevokeChannelTokensAsync(Caller caller, string channelId, CancellationToken cancellationToken)
    {
        caller.EnsureUser("revoke channel tokens");
        await GetChannelAsync(caller, channelId, cancellationToken);
        var revoked = tokens.RevokeChannel(channelId) + await auth.RevokeChannelTokensAsync(channelId, cancellationToken);
        events?.Publish(new LoopEvent("channel.tokens_revoked", time.GetUtcNow(), channelId, null, $"{revoked} channel token(s) revoked"));
        return revoked;
    }

    /// <summary>Stores the message, then wakes the channel. When this returns the message is durable.</summary>
    public async Task<ChatMessage> PostMessageAsync(Caller caller, string channelId, string? author, string? content, CancellationToken cancellationToken)
    {
        caller.EnsureCanAccess(channelId);
        ValidateMessage(author, content);
        ChatMessage message;
        try
        {
            message = await store.AppendMessageAsync(new NewMessage(channelId, MessageRole.User, author!, content!), cancellationToken);
        }
        catch (KeyNotFoundException)
        {
            // The store refuses a message for a channel it does not have: no separate look-up needed.
            throw new LoopNotFoundException($"channel {channelId} does not exist");
        }
        Received(message, "api");
        await grains.GetGrain<IChannelGrain>(channelId).Wake();
        return message;
    }

    /// <summary>The agent a channel is registered with: the mode and model asked for, checked.</summary>
    private static ChannelAgent AgentOf(string? mode, string? model)
    {
        if (model is not null)
        {
            CheckModel(model);
        }
        return new ChannelAgent(ModeOf(mode) ?? ChannelMode.Container, model);
    }

    /// <summary>The mode a person gave; null when none was.</summary>
    private static ChannelMode? ModeOf(string? mode) => mode is null ? null
        : ChannelAgent.ParseMode(mode) ?? throw new LoopValidationException("mode", $"mode must be {ChannelAgent.ModeWords} (found \"{mode}\")");

    /// <summary>The progress setting a person gave; null when none was.</summary>
    private static ChannelProgress? ProgressOf(string? progress) => progress is null ? null
        : ChannelAgent.ParseProgress(progress) ?? throw new LoopValidationException("progress", $"progress must be {ChannelAgent.ProgressWords} (found \"{progress}\")");

    private static void CheckModel(string model)
    {
        if (ChannelAgent.ModelProblem(model) is { } problem)
        {
            throw new LoopValidationException("model", problem);
        }
    }

    private void Received(ChatMessage message, string source)
    {
        metrics?.MessageAccepted(source);
        events?.Publish(new LoopEvent("message.received", message.CreatedAt, message.ChannelId, null,
            $"{message.Author}: {(message.Content.Length > 300 ? message.Content[..300] + "…" : message.Content)}"));
    }

    private static void ValidateMessage(string? author, string? content)
    {
        if (string.IsNullOrWhiteSpace(author))
        {
            throw new LoopValidationException("author", "author is required: who wrote the message, like \"alice\"");
        }
        if (author.Length > 100)
        {
            throw new LoopValidationException("author", "author must be at most 100 characters");
        }
        if (string.IsNullOrWhiteSpace(content))
        {
            throw new LoopValidationException("content", "content is required: the text of the message");
        }
        if (content.Length > MaxMessageLength)
        {
            throw new LoopValidationException("content", $"content must be at most {MaxMessageLength} characters (got {content.Length})");
        }
        StoredText.Ensure("author", author);
        StoredText.Ensure("content", content);
    }

    public async Task<IReadOnlyList<ChatMessage>> ListMessagesAsync(Caller caller, string channelId, long afterId, int limit, CancellationToken cancellationToken)
    {
        await GetChannelAsync(caller, channelId, cancellationToken);
        return await store.ListMessagesAsync(channelId, afterId, ClampPage(limit), cancellationToken);
    }

    /// <summary>The end of the conversation, what a chat page shows first; with <paramref name="beforeId"/>, the part before it.</summary>
    public async Task<IReadOnlyList<ChatMessage>> ListLatestMessagesAsync(Caller caller, string channelId, long? beforeId, int limit, CancellationToken cancellationToken)
    {
        await GetChannelAsync(caller, channelId, cancellationToken);
        return await store.ListLatestMessagesAsync(channelId, beforeId, ClampPage(limit), cancellationToken);
    }

    public async Task<Run> GetRunAsync(Caller caller, string runId, CancellationToken cancellationToken)
    {
        var run = await store.GetRunAsync(runId, cancellationToken)
            ?? throw new LoopNotFoundException($"run {runId} does not exist");
        caller.EnsureCanAccess(run.ChannelId);
        return run;
    }

    public async Task<IReadOnlyList<Run>> ListRunsAsync(Caller caller, string channelId, int limit, string? beforeRunId, CancellationToken cancellationToken)
    {
        await GetChannelAsync(caller, channelId, cancellationToken);
        return await store.ListRunsAsync(new RunQuery(ClampPage(limit), ChannelId: channelId, BeforeRunId: beforeRunId), cancellationToken);
    }

    /// <summary>Recent runs of every channel the caller may see, newest first, of one channel, one task
    /// or in one status (a wire name, like failed) when asked. A channel token sees its own channel's.</summary>
    public async Task<IReadOnlyList<Run>> ListRecentRunsAsync(Caller caller, string? channelId, string? taskId, string? status, int limit, string? beforeRunId, CancellationToken cancellationToken)
    {
        channelId ??= caller.ChannelId;
        if (channelId is not null)
        {
            await GetChannelAsync(caller, channelId, cancellationToken);
        }
        RunStatus? wanted = null;
        if (status is not null)
        {
            wanted = RunStatusExtensions.TryFromWire(status)
                ?? throw new LoopValidationException("status", $"status must be one of queued, running, succeeded, failed, timed_out, cancelled (got '{status}')");
        }
        return await store.ListRunsAsync(new RunQuery(ClampPage(limit), channelId, taskId, wanted, beforeRunId), cancellationToken);
    }

    /// <summary>Stops a queued or running run (and its container). The run then ends as cancelled.</summary>
    public async Task<Run> CancelRunAsync(Caller caller, string runId, CancellationToken cancellationToken)
    {
        var run = await GetRunAsync(caller, runId, cancellationToken);
        if (run.Status.IsFinal())
        {
            throw new LoopConflictException($"run {runId} already ended ({run.Status.ToWire()}); nothing to cancel");
        }
        if (await grains.GetGrain<IChannelGrain>(run.ChannelId).CancelRun(runId))
        {
            return run;
        }
        throw new LoopConflictException($"run {runId} ended meanwhile; nothing to cancel");
    }

    internal static int ClampPage(int limit)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            throw new LoopValidationException("limit", $"limit must be between 1 and {MaxPageSize}");
        }
        return limit;
    }
}

/// <summary>What a person asks to change in a channel, as given: null leaves a field as it is; a
/// <see cref="Model"/> of "" goes back to the configured model.</summary>
public sealed record ChannelChange(string? Name = null, string? DirPath = null, string? Mode = null, string? Model = null, string? Progress = null);
