namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Microsoft.Data.Sqlite;
using Xunit;

public abstract class StoreTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, 123, TimeSpan.Zero));
    private SqlLoopStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Migrating_again_changes_nothing()
    {
        var channel = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "project"), null, None)).Channel;
        var instanceId = await _store.GetInstanceIdAsync(None);

        Assert.Equal(22, await _store.MigrateAsync(None));
        var reopened = await backend.OpenAsync(_time);

        Assert.Equal([1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L, 10L, 11L, 12L, 13L, 14L, 15L, 16L, 17L, 18L, 19L, 20L, 21L, 22L], await backend.ReadColumnAsync<long>("SELECT version FROM schema_version ORDER BY version"));
        Assert.Equal([instanceId], await backend.ReadColumnAsync<string>("SELECT value FROM meta"));
        Assert.Equal([channel], await reopened.ListChannelsAsync(None));
    }

    [Fact]
    public async Task A_fork_with_a_worktree_records_it_once_made_and_its_forks_work_there()
    {
        var (parent, _) = await _store.EnsureChannelAsync(Path.Combine(backend.Root, "repo", "app"), null, None);
        var (fork, created) = (await _store.ForkChannelAsync(parent.Id, "explore", null, null, worktree: true, None))!.Value;
        Assert.True(created);
        Assert.Equal(new ChannelFork(parent.Id, null, parent.DirPath, WantsWorktree: true), fork.Fork);
        var plain = (await _store.ForkChannelAsync(parent.Id, "plain", null, null, worktree: false, None))!.Value.Channel;
        Assert.Equal(new ChannelFork(parent.Id, null, parent.DirPath), plain.Fork);

        var repo = Path.Combine(backend.Root, "repo");
        var path = ForkWorktree.PathFor(repo, fork.Id);
        var made = new ForkWorktree(repo, path, ForkWorktree.BranchFor(fork.Id), Path.Combine(path, "app"));
        await _store.SetChannelWorktreeAsync(fork.Id, made, None);
        Assert.Equal(made, (await _store.GetChannelAsync(fork.Id, None))!.Fork!.Worktree);
        var overview = (await _store.ListChannelOverviewsAsync(new ChannelListQuery(ChannelIds: [fork.Id]), None)).Channels.Single();
        Assert.Equal(new ChannelFork(parent.Id, null, parent.DirPath, true, made), overview.Channel.Fork);

        // A fork of the fork starts where the fork works: in its worktree.
        var deeper = (await _store.ForkChannelAsync(fork.Id, "deeper", null, null, worktree: false, None))!.Value.Channel;
        Assert.Equal(new ChannelFork(fork.Id, null, made.WorkDir), deeper.Fork);

        await _store.SetChannelWorktreeAsync(fork.Id, null, None);
        Assert.Equal(new ChannelFork(parent.Id, null, parent.DirPath, WantsWorktree: true), (await _store.GetChannelAsync(fork.Id, None))!.Fork);
    }

    [Fact]
    public async Task Instance_id_is_stable_across_reopen_and_differs_between_stores()
    {
        var first = await _store.GetInstanceIdAsync(None);
        _store = await backend.OpenAsync(_time);

        await using var otherBackend = backend.Another();
        var other = await otherBackend.OpenAsync(_time);

        Assert.Matches("^[0-9a-f]{16}$", first);
        Assert.Equal(first, await _store.GetInstanceIdAsync(None));
        Assert.NotEqual(first, await other.GetInstanceIdAsync(None));
    }

    [Fact]
    public async Task Ensure_channel_is_idempotent_per_directory_whatever_the_spelling()
    {
        var dir = Path.Combine(backend.Root, "projects", "webshop");

        var (created, wasCreated) = await _store.EnsureChannelAsync(dir, null, None);
        var (again, againCreated) = await _store.EnsureChannelAsync(dir + "/", "ignored name", None);
        var (dotted, dottedCreated) = await _store.EnsureChannelAsync(Path.Combine(backend.Root, "projects", ".", "webshop", ""), null, None);

        Assert.True(wasCreated);
        Assert.False(againCreated);
        Assert.False(dottedCreated);
        Assert.Equal(created, again);
        Assert.Equal(created, dotted);
        Assert.StartsWith("ch_", created.Id);
        Assert.Equal("webshop", created.Name);
        Assert.Equal(dir, created.DirPath);
        Assert.Null(created.SessionId);
        Assert.Equal(_time.GetUtcNow(), created.CreatedAt);
        Assert.Single(await _store.ListChannelsAsync(None));
    }

    [Fact]
    public async Task Channel_work_is_the_pending_messages_with_the_channel_or_nothing()
    {
        var (channel, _) = await _store.EnsureChannelAsync(Path.Combine(backend.Root, "worker"), null, None);
        var idle = await _store.GetChannelWorkAsync(channel.Id, _time.GetUtcNow(), None);
        Assert.Null(idle!.Channel);
        Assert.Empty(idle.Pending);
        Assert.Null((await _store.GetChannelWorkAsync("ch_missing", _time.GetUtcNow(), None))!.Channel);

        var first = await _store.AppendMessageAsync(new NewMessage(channel.Id, MessageRole.User, "alice", "one"), None);
        var second = await _store.AppendMessageAsync(new NewMessage(channel.Id, MessageRole.User, "bob", "two"), None);
        var work = await _store.GetChannelWorkAsync(channel.Id, _time.GetUtcNow(), None);

        Assert.Equal(channel, work!.Channel);
        Assert.Null(work.QueuedTaskRun);
        Assert.Equal([first, second], work.Pending);
    }

    [Fact]
    public async Task A_chat_message_delivered_twice_is_stored_once_even_by_two_nodes_at_once()
    {
        var (channel, _) = await _store.EnsureExternalChannelAsync("discord", "123", "general", None);
        var other = await backend.OpenAsync(_time);
        var delivery = new NewMessage(channel.Id, MessageRole.User, "alice", "hello", ExternalId: "m-1", Sender: "510000000000000051");

        var both = await Task.WhenAll(_store.AppendMessageAsync(delivery, None), other.AppendMessageAsync(delivery, None));
        var again = await _store.AppendMessageAsync(delivery, None);
        var elsewhere = await _store.AppendMessageAsync(delivery with { ChannelId = (await _store.EnsureExternalChannelAsync("discord", "456", "random", None)).Channel.Id }, None);

        Assert.Equal(both[0], both[1]);
        Assert.Equal(both[0], again);
        Assert.NotEqual(both[0].Id, elsewhere.Id);
        // Stored with who sent it, as read back.
        Assert.Equal("510000000000000051", Assert.Single(await _store.ListMessagesAsync(channel.Id, 0, 10, None)).Sender);
    }

    [Fact]
    public async Task Ensure_channel_keeps_a_given_name()
    {
        var (channel, _) = await _store.EnsureChannelAsync(Path.Combine(backend.Root, "api"), "  Backend API ", None);

        Assert.Equal("Backend API", channel.Name);
        Assert.Equal(channel, await _store.GetChannelAsync(channel.Id, None));
    }

    [Fact]
    public async Task Concurrent_ensure_channel_for_one_directory_creates_one_channel()
    {
        var dir = Path.Combine(backend.Root, "shared");
        var spellings = new[] { dir, dir + "/", dir + "//", Path.Combine(backend.Root, ".", "shared") };
        var store = await backend.OpenAsync(TimeProvider.System);

        var results = await Task.WhenAll(Enumerable.Range(0, 64).Select(i =>
            Task.Run(() => store.EnsureChannelAsync(spellings[i % spellings.Length], null, None))));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.Channel.Id).Distinct());
        Assert.Single(await store.ListChannelsAsync(None));
    }

    [Fact]
    public async Task Chat_channels_take_their_platform_names_but_a_project_dirs_channel_keeps_its_own()
    {
        var chat = (await _store.EnsureExternalChannelAsync("discord", "401", "discord-401", None)).Channel;
        var project = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "api"), null, None)).Channel;
        Assert.True(await _store.BindChannelAsync(project.Id, "discord", "402", None));

        var renamed = await _store.NameChatChannelsAsync("discord",
            new Dictionary<string, string> { ["401"] = "general", ["402"] = "api-chat", ["403"] = "unbound" }, None);

        Assert.Equal(1, renamed);
        Assert.Equal("general", (await _store.GetChannelAsync(chat.Id, None))!.Name);
        Assert.Equal("api", (await _store.GetChannelAsync(project.Id, None))!.Name);
        Assert.Equal(0, await _store.NameChatChannelsAsync("discord", new Dictionary<string, string> { ["401"] = "general" }, None));
        Assert.Equal(2, (await _store.ListChannelsAsync(None)).Count);
    }

    [Fact]
    public async Task A_channel_keeps_the_mode_and_model_it_was_registered_with()
    {
        var plain = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "plain"), null, None)).Channel;
        var direct = (await _store.EnsureChannelAsync(null, "chat", new ChannelAgent(ChannelMode.Direct, "claude-haiku-4-5"), None)).Channel;
        var (chat, _) = await _store.EnsureExternalChannelAsync("cn_tg", "7", "Alice", new ChannelAgent(ChannelMode.Direct, null), None);
        // An existing channel comes back as it is.
        var (again, created) = await _store.EnsureChannelAsync(Path.Combine(backend.Root, "plain"), null, new ChannelAgent(ChannelMode.Direct, "x"), None);

        Assert.Equal((ChannelMode.Container, null), (plain.Mode, plain.Model));
        Assert.Equal((ChannelMode.Direct, "claude-haiku-4-5"), (direct.Mode, direct.Model));
        Assert.Equal((ChannelMode.Direct, null), (chat.Mode, chat.Model));
        Assert.False(created);
        Assert.Equal(plain, again);
        Assert.Equal(direct, await _store.GetChannelAsync(direct.Id, None));
        Assert.Equal(chat, await _store.FindChannelByExternalAsync("cn_tg", "7", None));
        var overview = (await _store.ListChannelOverviewsAsync(new ChannelListQuery(ChannelIds: [direct.Id]), None)).Channels.Single();
        Assert.Equal(direct, overview.Channel);
    }

    [Fact]
    public async Task Ensure_channel_without_directory_always_creates_a_new_one()
    {
        var first = await _store.EnsureChannelAsync(null, null, None);
        var second = await _store.EnsureChannelAsync(null, null, None);
        var named = await _store.EnsureChannelAsync(null, "ops", None);

        Assert.True(first.Created && second.Created && named.Created);
        Assert.Equal(3, new[] { first.Channel.Id, second.Channel.Id, named.Channel.Id }.Distinct().Count());
        Assert.Null(first.Channel.DirPath);
        Assert.Matches("^channel-[0-9a-z]{6}$", first.Channel.Name);
        Assert.NotEqual(first.Channel.Name, second.Channel.Name);
        Assert.Equal("ops", named.Channel.Name);
        Assert.Equal(3, (await _store.ListChannelsAsync(None)).Count);
    }

    [Fact]
    public async Task Channel_session_is_kept_and_forgotten()
    {
        var channel = await NewChannelAsync();
        _time.Advance(TimeSpan.FromMinutes(5));

        await _store.SetChannelSessionAsync(channel.Id, "sess-1", None);
        var withSession = await _store.GetChannelAsync(channel.Id, None);
        await _store.SetChannelSessionAsync(channel.Id, null, None);
        var without = await _store.GetChannelAsync(channel.Id, None);

        Assert.Equal("sess-1", withSession!.SessionId);
        Assert.Equal(_time.GetUtcNow(), withSession.UpdatedAt);
        Assert.Equal(channel.CreatedAt, withSession.CreatedAt);
        Assert.Null(without!.SessionId);
        Assert.Null(await _store.GetChannelAsync("ch_missing", None));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => _store.SetChannelSessionAsync("ch_missing", "s", None));
    }

    [Fact]
    public async Task Messages_are_appended_and_listed_in_order_with_paging()
    {
        var channel = await NewChannelAsync();
        var other = await NewChannelAsync();
        var appended = new List<ChatMessage>();
        for (var i = 0; i < 25; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            var role = (MessageRole)(i % 3);
            appended.Add(await _store.AppendMessageAsync(new NewMessage(channel.Id, role, $"author{i}", $"line {i} ✓"), None));
            await _store.AppendMessageAsync(new NewMessage(other.Id, MessageRole.User, "x", "elsewhere"), None);
        }

        var page1 = await _store.ListMessagesAsync(channel.Id, 0, 10, None);
        var page2 = await _store.ListMessagesAsync(channel.Id, page1[^1].Id, 10, None);
        var page3 = await _store.ListMessagesAsync(channel.Id, page2[^1].Id, 10, None);
        var after = await _store.ListMessagesAsync(channel.Id, page3[^1].Id, 10, None);

        Assert.Equal(appended, page1.Concat(page2).Concat(page3));
        Assert.Equal([10, 10, 5], new[] { page1.Count, page2.Count, page3.Count });
        Assert.Empty(after);
        Assert.Equal(appended.OrderBy(m => m.Id), appended);
        Assert.Equal("line 24 ✓", page3[^1].Content);
        Assert.Equal(_time.GetUtcNow(), page3[^1].CreatedAt);
        Assert.Equal(MessageRole.Agent, page1[1].Role);
        await Assert.ThrowsAsync<KeyNotFoundException>(() =>
            _store.AppendMessageAsync(new NewMessage("ch_missing", MessageRole.User, "a", "b"), None));
    }

    [Fact]
    public async Task Pending_user_messages_are_claimed_by_exactly_one_run()
    {
        var channel = await NewChannelAsync();
        var u1 = await AppendAsync(channel, MessageRole.User, "first");
        var u2 = await AppendAsync(channel, MessageRole.User, "second");
        await AppendAsync(channel, MessageRole.System, "note");

        Assert.Equal([u1, u2], await _store.ListPendingMessagesAsync(channel.Id, None));
        Assert.Equal([channel.Id], await _store.ListChannelsWithPendingMessagesAsync(None));

        var run1 = await _store.CreateRunAsync(NewRun(channel), [u1.Id, u2.Id], None);
        Assert.Empty(await _store.ListPendingMessagesAsync(channel.Id, None));
        Assert.Empty(await _store.ListChannelsWithPendingMessagesAsync(None));

        var u3 = await AppendAsync(channel, MessageRole.User, "third");
        var run2 = await _store.CreateRunAsync(NewRun(channel), [u1.Id, u3.Id], None);

        var all = await _store.ListMessagesAsync(channel.Id, 0, 100, None);
        Assert.Equal([run1.Id, run1.Id, null, run2.Id], all.Select(m => m.RunId));
        Assert.Empty(await _store.ListPendingMessagesAsync(channel.Id, None));
        Assert.Equal(run1, await _store.GetRunAsync(run1.Id, None));
    }

    [Fact]
    public async Task Run_update_round_trips_every_field_exactly()
    {
        var channel = await NewChannelAsync();
        var queued = await _store.CreateRunAsync(NewRun(channel) with { TaskId = "task_7" }, [], None);
        Assert.Equal(queued, await _store.GetRunAsync(queued.Id, None));

        var finished = queued with
        {
            Status = RunStatus.TimedOut,
            StartedAt = queued.CreatedAt.AddSeconds(2),
            FinishedAt = queued.CreatedAt.AddMinutes(10).AddMilliseconds(7),
            ExitCode = 137,
            Reply = "partial answer\nwith lines",
            Error = "timed out after 10m",
            SessionId = "5c1e0a57-0000-4000-8000-000000000001",
            Model = "claude-sonnet-4-5",
            ContainerId = new string('a', 64),
            Usage = new RunUsage(
                InputTokens: 3_000_000_000L,
                OutputTokens: 4_321,
                CacheCreationInputTokens: 12_345,
                CacheReadInputTokens: 987_654,
                CostUsd: 0.123456789012345678901234567m,
                NumTurns: 42,
                DurationMs: 600_007),
        };
        await _store.UpdateRunAsync(finished, None);
        var read = await _store.GetRunAsync(queued.Id, None);

        Assert.Equal(finished, read);
        Assert.Equal(0.123456789012345678901234567m, read!.Usage.CostUsd);
        Assert.Equal("0.50", (await UpdateCostAsync(finished, 0.50m)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => _store.UpdateRunAsync(finished with { Id = "run_missing" }, None));
    }

    [Fact]
    public async Task Runs_are_listed_newest_first_with_keyset_paging()
    {
        var channel = await NewChannelAsync();
        var other = await NewChannelAsync();
        var runs = new List<Run>();
        for (var i = 0; i < 7; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(1));
            runs.Add(await _store.CreateRunAsync(NewRun(channel) with { Prompt = $"prompt {i}" }, [], None));
            await _store.CreateRunAsync(NewRun(other), [], None);
        }
        runs.Reverse();

        var page1 = await _store.ListRunsAsync(new RunQuery(3, ChannelId: channel.Id), None);
        var page2 = await _store.ListRunsAsync(new RunQuery(3, ChannelId: channel.Id, BeforeRunId: page1[^1].Id), None);
        var page3 = await _store.ListRunsAsync(new RunQuery(3, ChannelId: channel.Id, BeforeRunId: page2[^1].Id), None);
        var end = await _store.ListRunsAsync(new RunQuery(3, ChannelId: channel.Id, BeforeRunId: page3[^1].Id), None);

        Assert.Equal(runs, page1.Concat(page2).Concat(page3));
        Assert.Equal("prompt 6", page1[0].Prompt);
        Assert.Single(page3);
        Assert.Empty(end);
    }

    [Fact]
    public async Task Interrupted_runs_fail_and_their_messages_become_pending_again()
    {
        var channel = await NewChannelAsync();
        var m1 = await AppendAsync(channel, MessageRole.User, "queued one");
        var queued = await _store.CreateRunAsync(NewRun(channel), [m1.Id], None);
        var m2 = await AppendAsync(channel, MessageRole.User, "running one");
        var running = await _store.CreateRunAsync(NewRun(channel), [m2.Id], None);
        running = running with { Status = RunStatus.Running, StartedAt = _time.GetUtcNow(), ContainerId = "c1" };
        await _store.UpdateRunAsync(running, None);
        var reply = await AppendAsync(channel, MessageRole.Agent, "half a reply", running.Id);
        var m3 = await AppendAsync(channel, MessageRole.User, "done one");
        var done = await _store.CreateRunAsync(NewRun(channel), [m3.Id], None);
        done = done with { Status = RunStatus.Succeeded, FinishedAt = _time.GetUtcNow(), Reply = "ok" };
        await _store.UpdateRunAsync(done, None);

        var now = _time.GetUtcNow().AddMinutes(1);
        var interrupted = await _store.FailInterruptedRunsAsync("loop restarted", now, null, None);

        Assert.Equal([queued, running], interrupted);
        Assert.Equal(queued with { Status = RunStatus.Failed, Error = "loop restarted", FinishedAt = now },
            await _store.GetRunAsync(queued.Id, None));
        Assert.Equal(running with { Status = RunStatus.Failed, Error = "loop restarted", FinishedAt = now },
            await _store.GetRunAsync(running.Id, None));
        Assert.Equal(done, await _store.GetRunAsync(done.Id, None));
        Assert.Equal([m1.Id, m2.Id], (await _store.ListPendingMessagesAsync(channel.Id, None)).Select(m => m.Id));
        var messages = await _store.ListMessagesAsync(channel.Id, 0, 10, None);
        Assert.Equal(running.Id, messages.Single(m => m.Id == reply.Id).RunId);
        Assert.Equal(done.Id, messages.Single(m => m.Id == m3.Id).RunId);
        Assert.Empty(await _store.FailInterruptedRunsAsync("again", now, null, None));
    }

    [Fact]
    public async Task A_nodes_recovery_fails_only_the_runs_that_node_had_taken()
    {
        var nodeA = await backend.OpenAsync(_time, "node-a");
        var nodeB = await backend.OpenAsync(_time, "node-b");
        var channel = await NewChannelAsync();
        var other = await NewChannelAsync();
        var queuedOnA = await nodeA.CreateRunAsync(NewRun(channel), [(await AppendAsync(channel, MessageRole.User, "a queued")).Id], None);
        var runningOnA = await nodeA.CreateRunAsync(NewRun(channel), [(await AppendAsync(channel, MessageRole.User, "a running")).Id], None);
        Assert.True(await nodeA.TryStartRunAsync(runningOnA.Id, _time.GetUtcNow(), None));
        var runningOnB = await nodeB.CreateRunAsync(NewRun(other), [(await AppendAsync(other, MessageRole.User, "b running")).Id], None);
        Assert.True(await nodeB.TryStartRunAsync(runningOnB.Id, _time.GetUtcNow(), None));

        var failed = await nodeB.FailInterruptedRunsAsync("node-a died", _time.GetUtcNow(), "node-a", None);

        Assert.Equal([queuedOnA.Id, runningOnA.Id], failed.Select(r => r.Id));
        Assert.Equal(RunStatus.Running, (await _store.GetRunAsync(runningOnB.Id, None))!.Status);
        Assert.Equal(["a queued", "a running"], (await _store.ListPendingMessagesAsync(channel.Id, None)).Select(m => m.Content));
        Assert.Empty(await _store.ListPendingMessagesAsync(other.Id, None));
        Assert.Empty(await nodeB.FailInterruptedRunsAsync("node-a died", _time.GetUtcNow(), "node-a", None));
    }

    [Fact]
    public async Task A_reply_a_stopped_node_left_unposted_is_adopted_by_one_node_and_posted_once()
    {
        var nodeA = await backend.OpenAsync(_time, "node-a");
        var nodeB = await backend.OpenAsync(_time, "node-b");
        var nodeC = await backend.OpenAsync(_time, "node-c");
        await _store.InsertConnectorAsync(new NewConnector("cn_tg", ConnectorKind.Telegram, "bot", true,
            new SortedDictionary<string, string>(), [], ["token"], "v1.sealed", ConnectorSource.Api), None);
        var chat = (await _store.EnsureExternalChannelAsync("cn_tg", "42", "Alice", None)).Channel;
        var web = await NewChannelAsync();
        var since = _time.GetUtcNow();
        var answered = await FinishedOnAsync(nodeA, chat, "answered");
        await nodeA.MarkReplyPostedAsync(answered.Id, _time.GetUtcNow(), None);
        var unposted = await FinishedOnAsync(nodeA, chat, "left unposted");
        await FinishedOnAsync(nodeA, web, "web chats read the store");
        var running = await nodeA.CreateRunAsync(NewRun(chat), [(await AppendAsync(chat, MessageRole.User, "still going")).Id], None);

        Assert.Equal([new UnpostedReply(unposted.Id, "node-a")], await _store.ListUnpostedRepliesAsync(since, None));
        Assert.Empty(await _store.ListUnpostedRepliesAsync(_time.GetUtcNow().AddMilliseconds(1), None));

        var adopted = await Task.WhenAll(
            nodeB.AdoptUnpostedReplyAsync(unposted.Id, "node-a", None),
            nodeC.AdoptUnpostedReplyAsync(unposted.Id, "node-a", None));
        var run = Assert.Single(adopted, r => r is not null)!;
        Assert.Equal((unposted.Id, RunStatus.Succeeded), (run.Id, run.Status));
        var adopter = adopted[0] is null ? nodeC : nodeB;
        Assert.Equal([new UnpostedReply(unposted.Id, adopter.Node)], await _store.ListUnpostedRepliesAsync(since, None));
        Assert.Null(await nodeB.AdoptUnpostedReplyAsync(unposted.Id, "node-a", None));

        Assert.False(await _store.IsReplyPostedAsync(unposted.Id, None));
        await adopter.MarkReplyPostedAsync(unposted.Id, _time.GetUtcNow(), None);
        Assert.True(await _store.IsReplyPostedAsync(unposted.Id, None));
        Assert.Empty(await _store.ListUnpostedRepliesAsync(since, None));
        Assert.Null(await nodeB.AdoptUnpostedReplyAsync(unposted.Id, adopter.Node, None));

        // An interrupted run has nothing to post: its messages run again, and that run answers them.
        Assert.Equal(running.Id, Assert.Single(await nodeB.FailInterruptedRunsAsync("node-a died", _time.GetUtcNow(), "node-a", None)).Id);
        Assert.Empty(await _store.ListUnpostedRepliesAsync(since, None));
    }

    [Fact]
    public async Task A_stranger_is_told_once_per_period_per_connector()
    {
        var now = _time.GetUtcNow();
        var day = TimeSpan.FromDays(1);

        Assert.True(await _store.RecordRefusalAsync("cn_tg", "10000002", now, now - day, None));
        Assert.False(await _store.RecordRefusalAsync("cn_tg", "10000002", now.AddHours(23), now.AddHours(23) - day, None));
        Assert.True(await _store.RecordRefusalAsync("cn_wa", "10000002", now.AddHours(23), now.AddHours(23) - day, None));
        Assert.True(await _store.RecordRefusalAsync("cn_tg", "10000002", now.AddHours(25), now.AddHours(25) - day, None));
        // The day counts from the last time they were told.
        Assert.False(await _store.RecordRefusalAsync("cn_tg", "10000002", now.AddHours(48), now.AddHours(48) - day, None));
    }

    private async Task<Run> FinishedOnAsync(SqlLoopStore node, Channel channel, string prompt)
    {
        var run = await node.CreateRunAsync(NewRun(channel), [(await AppendAsync(channel, MessageRole.User, prompt)).Id], None);
        Assert.True(await node.TryStartRunAsync(run.Id, _time.GetUtcNow(), None));
        var finished = run with { Status = RunStatus.Succeeded, StartedAt = _time.GetUtcNow(), FinishedAt = _time.GetUtcNow(), Reply = "done: " + prompt };
        await node.FinishRunAsync(finished, RunReplies.For(finished), session: null, None);
        return finished;
    }

    [Fact]
    public async Task Data_survives_closing_and_reopening_the_store()
    {
        var (channel, _) = await _store.EnsureChannelAsync(Path.Combine(backend.Root, "keep"), null, None);
        await _store.SetChannelSessionAsync(channel.Id, "sess-keep", None);
        var message = await AppendAsync(channel, MessageRole.User, "remember me");
        var run = await _store.CreateRunAsync(NewRun(channel), [message.Id], None);
        var instanceId = await _store.GetInstanceIdAsync(None);
        var channelBefore = await _store.GetChannelAsync(channel.Id, None);
        await _store.DisposeAsync();

        _store = await backend.OpenAsync(_time);

        Assert.Equal(channelBefore, await _store.GetChannelAsync(channel.Id, None));
        Assert.Equal([message with { RunId = run.Id }], await _store.ListMessagesAsync(channel.Id, 0, 10, None));
        Assert.Equal(run, await _store.GetRunAsync(run.Id, None));
        Assert.Equal(instanceId, await _store.GetInstanceIdAsync(None));
        Assert.False((await _store.EnsureChannelAsync(Path.Combine(backend.Root, "keep"), null, None)).Created);
    }

    [Fact]
    public async Task Concurrent_appends_from_many_tasks_lose_nothing()
    {
        var store = await backend.OpenAsync(TimeProvider.System);
        var channels = new List<Channel>();
        for (var i = 0; i < 5; i++)
        {
            channels.Add((await store.EnsureChannelAsync(null, null, None)).Channel);
        }

        var appended = await Task.WhenAll(Enumerable.Range(0, 100).Select(task => Task.Run(async () =>
        {
            var mine = new List<ChatMessage>();
            for (var i = 0; i < 20; i++)
            {
                mine.Add(await store.AppendMessageAsync(
                    new NewMessage(channels[(task + i) % channels.Count].Id, MessageRole.User, $"t{task}", $"{task}/{i}"), None));
            }
            return mine;
        })));

        var stored = new List<ChatMessage>();
        foreach (var channel in channels)
        {
            stored.AddRange(await store.ListMessagesAsync(channel.Id, 0, 10_000, None));
        }
        var sent = appended.SelectMany(m => m).ToList();
        Assert.Equal(2000, stored.Count);
        Assert.Equal(sent.OrderBy(m => m.Id), stored.OrderBy(m => m.Id));
        Assert.Equal(2000, stored.Select(m => m.Content).Distinct().Count());
    }

    private async Task<decimal> UpdateCostAsync(Run run, decimal cost)
    {
        await _store.UpdateRunAsync(run with { Usage = run.Usage with { CostUsd = cost } }, None);
        return (await _store.GetRunAsync(run.Id, None))!.Usage.CostUsd;
    }

    [Fact]
    public async Task A_channel_is_renamed_moved_and_deleted_only_when_it_has_no_work()
    {
        var first = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "one"), null, None)).Channel;
        var second = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "two"), null, None)).Channel;
        await _store.SetChannelSessionAsync(first.Id, "session-1", None);

        Assert.Equal(ChannelWrite.Written, await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), Name: "renamed"), None));
        Assert.Equal(("renamed", "session-1"), await NameAndSessionAsync(first.Id));
        Assert.Equal(ChannelWrite.DirTaken, await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), DirPath: second.DirPath), None));
        Assert.Equal(ChannelWrite.Written, await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), DirPath: Path.Combine(backend.Root, "three")), None));
        Assert.Equal(("renamed", null), await NameAndSessionAsync(first.Id));

        // A model changes alone; a mode forgets the session, which belongs to the other runner.
        await _store.SetChannelSessionAsync(first.Id, "session-2", None);
        await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), Model: "claude-haiku-4-5"), None);
        Assert.Equal(("renamed", "session-2"), await NameAndSessionAsync(first.Id));
        await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), Mode: ChannelMode.Direct), None);
        Assert.Equal(("renamed", null), await NameAndSessionAsync(first.Id));
        var direct = (await _store.GetChannelAsync(first.Id, None))!;
        Assert.Equal((ChannelMode.Direct, "claude-haiku-4-5"), (direct.Mode, direct.Model));
        await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), Model: ""), None);
        Assert.Null((await _store.GetChannelAsync(first.Id, None))!.Model);

        // Progress is shown by default, changes alone, and keeps the session.
        Assert.Equal(ChannelProgress.Tools, direct.Progress);
        await _store.SetChannelSessionAsync(first.Id, "session-3", None);
        await _store.UpdateChannelAsync(new ChannelUpdate(first.Id, _time.GetUtcNow(), Progress: ChannelProgress.Off), None);
        Assert.Equal(("renamed", "session-3"), await NameAndSessionAsync(first.Id));
        Assert.Equal(ChannelProgress.Off, (await _store.GetChannelAsync(first.Id, None))!.Progress);
        Assert.Equal(ChannelProgress.Off, (await _store.ListChannelsAsync(None)).Single(c => c.Id == first.Id).Progress);
        var chat = (await _store.EnsureExternalChannelAsync("discord", "777", "quiet", new ChannelAgent(ChannelMode.Container, null, ChannelProgress.Verbose), None)).Channel;
        Assert.Equal(ChannelProgress.Verbose, (await _store.GetChannelAsync(chat.Id, None))!.Progress);
        Assert.Equal(ChannelWrite.Missing, await _store.UpdateChannelAsync(new ChannelUpdate("ch_none", _time.GetUtcNow(), Name: "x"), None));

        var message = await AppendAsync(first, MessageRole.User, "hello");
        Assert.Equal("a message waits for a run", (await _store.DeleteChannelAsync(first.Id, None)).Busy);
        var run = await _store.CreateRunAsync(NewRun(first), [message.Id], None);
        Assert.Equal($"run {run.Id} is queued", (await _store.DeleteChannelAsync(first.Id, None)).Busy);
        var finished = run with { Status = RunStatus.Succeeded, FinishedAt = _time.GetUtcNow(), Reply = "hi" };
        await _store.FinishRunAsync(finished, RunReplies.For(finished), null, None);

        var deletion = await _store.DeleteChannelAsync(first.Id, None);
        Assert.True(deletion.Deleted);
        Assert.Null(await _store.GetChannelAsync(first.Id, None));
        Assert.Null(await _store.GetRunAsync(run.Id, None));
        Assert.Empty(await _store.ListMessagesAsync(first.Id, 0, 10, None));
        Assert.Equal(ChannelDeletion.Missing, await _store.DeleteChannelAsync(first.Id, None));
        Assert.NotNull(await _store.GetChannelAsync(second.Id, None));
    }

    [Fact]
    public async Task The_tasks_channel_is_made_once()
    {
        var made = await _store.EnsureTasksChannelAsync(None);
        var again = await _store.EnsureTasksChannelAsync(None);
        Assert.Equal((Channel.TasksChannelId, "tasks", (string?)null), (made.Id, made.Name, made.DirPath));
        Assert.Equal(made, again);
        Assert.Single(await _store.ListChannelsAsync(None));
    }

    private async Task<(string Name, string? Session)> NameAndSessionAsync(string channelId) =>
        await _store.GetChannelAsync(channelId, None) is { } channel ? (channel.Name, channel.SessionId) : throw new InvalidOperationException("gone");

    private async Task<Channel> NewChannelAsync() => (await _store.EnsureChannelAsync(null, null, None)).Channel;

    private Task<ChatMessage> AppendAsync(Channel channel, MessageRole role, string content, string? runId = null) =>
        _store.AppendMessageAsync(new NewMessage(channel.Id, role, "alice", content, runId), None);

    /// <summary>A queued run; the clock moves a millisecond first so run ids sort in creation order.</summary>
    private Run NewRun(Channel channel)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        return new(Ids.New("run", _time), channel.Id, null, RunStatus.Queued, "do the thing", _time.GetUtcNow(),
            null, null, null, null, null, null, null, null, RunUsage.None);
    }
}

public sealed class StoreTestsOnSqlite : StoreTests
{
    private readonly SqliteBackend _sqlite;

    public StoreTestsOnSqlite()
        : this(new SqliteBackend())
    {
    }

    private StoreTestsOnSqlite(SqliteBackend sqlite)
        : base(sqlite) => _sqlite = sqlite;

    [Fact]
    public async Task The_database_is_a_file_in_wal_mode()
    {
        var store = (SqliteLoopStore)await _sqlite.OpenAsync(TimeProvider.System);

        Assert.True(File.Exists(store.DatabasePath));
        Assert.Equal(["wal"], ReadColumn<string>("PRAGMA journal_mode"));
    }

    [Fact]
    public void Pending_messages_are_found_through_the_partial_index()
    {
        var plan = ReadColumn<string>("""
            EXPLAIN QUERY PLAN SELECT id FROM messages
            WHERE channel_id = 'ch_x' AND run_id IS NULL AND role = 'user' ORDER BY id
            """, column: 3);
        var activeRuns = ReadColumn<string>(
            "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE status IN ('queued', 'running')", column: 3);

        Assert.Contains(plan, p => p.Contains("ix_messages_pending"));
        Assert.Contains(activeRuns, p => p.Contains("ix_runs_active"));
    }

    /// <summary>Reads the file directly, as someone inspecting it with the sqlite3 shell would.</summary>
    private List<T> ReadColumn<T>(string sql, int column = 0)
    {
        using var connection = new SqliteConnection($"Data Source={_sqlite.DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<T>();
        while (reader.Read())
        {
            values.Add(reader.GetFieldValue<T>(column));
        }
        return values;
    }
}

public sealed class StoreTestsOnPostgres() : StoreTests(new PostgresBackend());
