namespace Loop.Telegram.Tests;

using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Loop.Domain.Channels;
using Loop.Runtime;
using Loop.Telegram;

/// <summary>The Telegram connector on a real node (store, grains, scripted agent) against the Bot API double.</summary>
public sealed class ConnectorTests
{
    private static readonly TelegramChat AlicePrivate = TelegramChat.Private(TelegramUser.Alice);
    private static readonly TelegramChat BobPrivate = TelegramChat.Private(TelegramUser.Bob);
    private static readonly TelegramUser Carol = new(10000003, "Carol", "carol_example");

    private static string Id(long chat) => chat.ToString(CultureInfo.InvariantCulture);

    private static Task<SentMessage> ReplyAsync(TelegramDouble telegram, long chat, Func<SentMessage, bool> which, string what) =>
        WaitForAsync(() => telegram.SentTo(chat).FirstOrDefault(which), what);

    private static async Task<T> WaitForAsync<T>(Func<T?> find, string what) where T : class
    {
        T? found = null;
        await Eventually.WaitAsync(() => (found = find()) is not null, what);
        return found!;
    }

    private static int? RepliesTo(SentMessage sent) => (int?)sent.Message["reply_to_message"]?["message_id"];

    [Fact]
    public async Task A_private_message_reaches_the_agent_and_the_reply_answers_it_with_typing_before()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);

        Assert.Equal($"connected as @{TelegramDouble.BotUsername}", loop.Adapter.Status);
        Assert.Equal(["message", "callback_query"], telegram.AllowedUpdates());
        Assert.Equal(["loop", "schedule", "tasks", "cancel", "toggle", "status", "budget"], telegram.Commands()!.Select(c => (string)c!["command"]!));

        var trigger = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "what does **this** repo do?");
        var reply = await ReplyAsync(telegram, AlicePrivate.Id, m => m.Text.EndsWith("repo do?", StringComparison.Ordinal), "the agent's reply");

        Assert.Equal("Alice Liddell: what does **this** repo do?", Assert.Single(loop.Sandbox.Prompts));
        Assert.Equal((int)trigger["message_id"]!, RepliesTo(reply));
        Assert.Equal("HTML", (string?)reply.Request["parse_mode"], StringComparer.OrdinalIgnoreCase);
        Assert.Contains(reply.Message["entities"]!.AsArray(), e => (string?)e!["type"] == "bold");
        var typing = telegram.CallsTo("sendChatAction").First();
        Assert.Equal("typing", (string?)typing.Body["action"]);
        Assert.True(typing.At <= telegram.CallsTo("sendMessage").First(c => c.Status == 200).At);
        var stored = await loop.StoredAsync(Id(AlicePrivate.Id));
        var channel = await loop.Node.Get<ChannelService>().FindChatChannelAsync("telegram", Id(AlicePrivate.Id), CancellationToken.None);
        Assert.Equal("Alice Liddell (@alice_example)", channel!.Name);
        Assert.Equal("Alice Liddell", stored.First(m => m.Role == MessageRole.User).Author);
    }

    [Fact]
    public async Task In_a_group_only_a_mention_a_reply_to_the_bot_or_loop_reach_the_agent()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        var group = TelegramChat.Group();

        telegram.EnqueueMessage(group, TelegramUser.Alice, "just chatting among humans");
        telegram.EnqueueMessage(group, TelegramUser.Bob, "/loop@other_bot not for us");
        var mention = telegram.EnqueueMessage(group, TelegramUser.Alice, $"@{TelegramDouble.BotUsername} first question");
        var first = await ReplyAsync(telegram, group.Id, m => m.Text.EndsWith("first question", StringComparison.Ordinal), "the reply to the mention");
        Assert.Equal((int)mention["message_id"]!, RepliesTo(first));

        telegram.EnqueueMessage(group, TelegramUser.Bob, "a reply to a human", replyTo: (int)mention["message_id"]!);
        var reply = telegram.EnqueueMessage(group, TelegramUser.Bob, "second question", replyTo: first.MessageId);
        var second = await ReplyAsync(telegram, group.Id, m => m.Text.EndsWith("second question", StringComparison.Ordinal), "the reply to the reply");
        Assert.Equal((int)reply["message_id"]!, RepliesTo(second));

        var command = telegram.EnqueueMessage(group, TelegramUser.Alice, $"/loop@{TelegramDouble.BotUsername} third question");
        var third = await ReplyAsync(telegram, group.Id, m => m.Text.EndsWith("third question", StringComparison.Ordinal), "the reply to /loop");
        Assert.Equal((int)command["message_id"]!, RepliesTo(third));

        Assert.Equal(["Alice Liddell: first question", "Bob: second question", "Alice Liddell: third question"], loop.Sandbox.Prompts);
        var stored = (await loop.StoredAsync(Id(group.Id))).Where(m => m.Role == MessageRole.User).Select(m => m.Content);
        Assert.Equal(["first question", "second question", "third question"], stored);
        var channel = await loop.Node.Get<ChannelService>().FindChatChannelAsync("telegram", Id(group.Id), CancellationToken.None);
        Assert.Equal("Loop group", channel!.Name);
    }

    [Fact]
    public async Task A_forum_topic_is_a_channel_of_its_own_and_replies_go_to_the_topic()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        var forum = TelegramChat.Supergroup(isForum: true);

        var asked = telegram.EnqueueMessage(forum, TelegramUser.Alice, $"@{TelegramDouble.BotUsername} in the topic", messageThreadId: 77);
        var reply = await ReplyAsync(telegram, forum.Id, m => m.Text.EndsWith("in the topic", StringComparison.Ordinal), "the reply in the topic");

        Assert.Equal(77, (int?)reply.Message["message_thread_id"]);
        Assert.Equal((int)asked["message_id"]!, RepliesTo(reply));
        Assert.NotEmpty(await loop.StoredAsync($"{forum.Id}:77"));
    }

    [Fact]
    public async Task A_stranger_is_refused_politely_once_a_day_and_never_reaches_the_agent()
    {
        var clock = new ShiftedClock();
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram, allowed: ["@alice_example"], clock: clock);
        await loop.WaitConnectedAsync(telegram);

        telegram.EnqueueMessage(BobPrivate, TelegramUser.Bob, "let me in");
        telegram.EnqueueMessage(BobPrivate, TelegramUser.Bob, "please?");
        // Alice's message comes after Bob's: once she has her reply, Bob's messages were handled.
        telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "hello");
        await ReplyAsync(telegram, AlicePrivate.Id, m => m.Text.EndsWith("hello", StringComparison.Ordinal), "Alice's reply");
        var refusal = await ReplyAsync(telegram, BobPrivate.Id, _ => true, "the refusal");
        Assert.Contains("10000002", refusal.Text);
        Assert.Contains("@bob_example", refusal.Text);
        Assert.Single(telegram.SentTo(BobPrivate.Id));

        clock.Advance(TimeSpan.FromHours(25));
        telegram.EnqueueMessage(BobPrivate, TelegramUser.Bob, "a day later");
        await Eventually.WaitAsync(() => telegram.SentTo(BobPrivate.Id).Count == 2, "the next day's refusal");

        Assert.Equal(["Alice Liddell: hello"], loop.Sandbox.Prompts);
        Assert.Empty(await loop.StoredAsync(Id(BobPrivate.Id)));
    }

    [Fact]
    public async Task The_whitelist_takes_user_ids_and_usernames()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        // Bob by id, Alice by username (any case), Carol not at all.
        await using var loop = await TelegramHarness.StartAsync(telegram, allowed: ["10000002", "@Alice_Example"]);
        await loop.WaitConnectedAsync(telegram);
        var group = TelegramChat.Group();

        telegram.EnqueueMessage(group, Carol, $"@{TelegramDouble.BotUsername} from carol");
        telegram.EnqueueMessage(group, TelegramUser.Bob, $"@{TelegramDouble.BotUsername} from bob");
        telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "from alice");

        await ReplyAsync(telegram, group.Id, m => m.Text.EndsWith("from bob", StringComparison.Ordinal), "Bob's reply");
        await ReplyAsync(telegram, AlicePrivate.Id, m => m.Text.EndsWith("from alice", StringComparison.Ordinal), "Alice's reply");
        var refusal = await ReplyAsync(telegram, group.Id, m => m.Text.Contains("10000003", StringComparison.Ordinal), "Carol's refusal");
        Assert.Contains("@carol_example", refusal.Text);
        Assert.DoesNotContain(loop.Sandbox.Prompts, p => p.Contains("from carol", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_long_reply_is_split_at_4096_characters_without_breaking_its_code_block()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        var code = string.Join('\n', Enumerable.Range(1, 150).Select(i => $"    line_{i:D3} = compute({i}) <tag> & more"));
        var answer = new StringBuilder();
        answer.Append(string.Join("\n\n", Enumerable.Range(1, 20).Select(i => $"Paragraph {i}: **bold {i}** and `code {i}` " + new string('x', 80))));
        answer.Append("\n\n```python\n").Append(code).Append("\n```\n\nThe end.");
        loop.Sandbox.Script = _ => new AgentScript(answer.ToString());

        var trigger = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "long please");
        await ReplyAsync(telegram, AlicePrivate.Id, m => m.Text.EndsWith("The end.", StringComparison.Ordinal), "the last part");

        var parts = telegram.SentTo(AlicePrivate.Id);
        Assert.True(parts.Count >= 2);
        Assert.Equal((int)trigger["message_id"]!, RepliesTo(parts[0]));
        Assert.All(parts.Skip(1), p => Assert.Null(RepliesTo(p)));
        Assert.All(parts, p => Assert.True(p.Text.Length <= TelegramDouble.MaxTextLength));
        // The code block, cut in two, is a pre entity in each part, and its lines all arrive whole.
        var withCode = parts.Where(p => p.Message["entities"]?.AsArray().Any(e => (string?)e!["type"] == "pre") == true).ToList();
        Assert.True(withCode.Count >= 2, "the code block spans two parts");
        Assert.All(withCode, p => Assert.Contains(p.Message["entities"]!.AsArray(), e => (string?)e!["type"] == "pre" && (string?)e["language"] == "python"));
        var all = string.Join('\n', parts.Select(p => p.Text));
        for (var i = 1; i <= 150; i++)
        {
            Assert.Contains($"    line_{i:D3} = compute({i}) <tag> & more", all);
        }
        Assert.DoesNotContain("```", all);
        Assert.All(Enumerable.Range(1, 20), i => Assert.Contains($"bold {i}", all));
    }

    [Fact]
    public async Task Markup_telegram_cannot_parse_goes_again_as_plain_text()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        loop.Sandbox.Script = _ => new AgentScript("Done: **all** tests pass");
        telegram.FailNext("sendMessage", 400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 6");

        var trigger = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "run the tests");
        var sent = await ReplyAsync(telegram, AlicePrivate.Id, _ => true, "the reply");

        Assert.Equal("Done: **all** tests pass", sent.Text);
        Assert.Null(sent.Request["parse_mode"]);
        Assert.Equal((int)trigger["message_id"]!, RepliesTo(sent));
        Assert.Single(telegram.SentTo(AlicePrivate.Id));
        Assert.Equal(400, telegram.CallsTo("sendMessage").First().Status);
    }

    [Fact]
    public async Task A_429_is_waited_out_and_the_message_still_sent()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        telegram.FailNext("sendMessage", 429, retryAfter: 1);

        telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "busy?");
        await ReplyAsync(telegram, AlicePrivate.Id, m => m.Text.EndsWith("busy?", StringComparison.Ordinal), "the reply after the 429");

        var calls = telegram.CallsTo("sendMessage");
        Assert.Equal([429, 200], calls.Select(c => c.Status));
        // retry_after is 1 s; the two times are read when each answer is written, and timers may fire a
        // few milliseconds early against the wall clock.
        var waited = calls[1].At - calls[0].At;
        Assert.True(waited >= TimeSpan.FromMilliseconds(950), $"retry_after was honoured (waited {waited.TotalMilliseconds} ms)");
        Assert.Single(telegram.SentTo(AlicePrivate.Id));
    }

    [Fact]
    public async Task An_update_is_not_confirmed_until_its_message_is_stored()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        loop.Store.Refusing = true;

        telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "keep me");
        // Taken, refused by the store, and taken again: the update is still queued at Telegram.
        await Eventually.WaitAsync(() => loop.Store.Refused >= 2, "the message taken twice while the store is away");
        Assert.Equal(1, telegram.PendingUpdates());
        Assert.StartsWith("connected", loop.Adapter.Status, StringComparison.Ordinal);

        loop.Store.Refusing = false;
        await ReplyAsync(telegram, AlicePrivate.Id, m => m.Text.EndsWith("keep me", StringComparison.Ordinal), "the reply once the store is back");
        await Eventually.WaitAsync(() => telegram.PendingUpdates() == 0, "the update confirmed");
        Assert.Equal(["Alice Liddell: keep me"], loop.Sandbox.Prompts);
        Assert.Single(await loop.StoredAsync(Id(AlicePrivate.Id)), m => m.Role == MessageRole.User);
    }

    [Fact]
    public async Task Commands_manage_tasks_with_the_api_s_validation_messages()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        var chat = AlicePrivate.Id;
        var tasks = loop.Node.Get<TaskService>();

        async Task<string> AskAsync(string text)
        {
            var before = telegram.SentTo(chat).Count;
            var asked = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, text);
            await Eventually.WaitAsync(() => telegram.SentTo(chat).Count > before, $"the answer to {text}");
            var answer = telegram.SentTo(chat)[before];
            Assert.Equal((int)asked["message_id"]!, RepliesTo(answer));
            return answer.Text;
        }

        async Task<string> ApiSaysAsync(string? type, string? schedule, string? prompt, string channelId) =>
            (await Assert.ThrowsAsync<LoopValidationException>(() =>
                tasks.CreateAsync(Caller.User, new NewTaskRequest(channelId, type, schedule, prompt), CancellationToken.None))).Message;

        var noType = await AskAsync("/schedule");
        var channel = (await loop.Node.Get<ChannelService>().FindChatChannelAsync("telegram", Id(chat), CancellationToken.None))!;
        Assert.StartsWith("❌ " + await ApiSaysAsync(null, null, null, channel.Id), noType);
        Assert.StartsWith("❌ " + await ApiSaysAsync("interval", "soon", "check", channel.Id), await AskAsync("/schedule interval soon check"));
        Assert.StartsWith("❌ " + await ApiSaysAsync("cron", "99 * * * *", "check", channel.Id), await AskAsync("/schedule cron 99 * * * * check"));
        Assert.Equal("❌ task_id is required", await AskAsync("/cancel"));

        var scheduled = await AskAsync("/schedule interval 1h check the build");
        Assert.StartsWith("Scheduled task ", scheduled);
        var task = Assert.Single(await tasks.ListAsync(Caller.User, channel.Id, CancellationToken.None));
        Assert.Equal("check the build", task.Prompt);
        Assert.Contains(task.Id, await AskAsync("/tasks"));
        Assert.Contains("disabled", await AskAsync($"/toggle {task.Id}"));
        var cron = await AskAsync("/schedule cron \"0 9 * * 1-5\" summarise yesterday");
        Assert.Contains("0 9 * * 1-5", cron);
        Assert.Contains("telegram: connected as @" + TelegramDouble.BotUsername, await AskAsync("/status"));
        Assert.Equal($"Cancelled task {task.Id}.", await AskAsync($"/cancel {task.Id}"));
        Assert.StartsWith("❌ ", await AskAsync($"/cancel {task.Id}"));
        Assert.Empty(loop.Sandbox.Prompts);
    }

    [Fact]
    public async Task Members_read_the_budget_and_only_owners_set_it_or_schedule()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram);
        await loop.WaitConnectedAsync(telegram);
        await loop.Node.Get<ConnectorService>().SetRolesAsync(Caller.User, "telegram", ["@bob_example"], [], CancellationToken.None);
        var bobPrivate = TelegramChat.Private(TelegramUser.Bob);

        async Task<string> AskAsync(TelegramChat chat, TelegramUser from, string text)
        {
            var before = telegram.SentTo(chat.Id).Count;
            telegram.EnqueueMessage(chat, from, text);
            await Eventually.WaitAsync(() => telegram.SentTo(chat.Id).Count > before, $"the answer to {text}");
            return telegram.SentTo(chat.Id)[before].Text;
        }

        // Alice is let in by the whitelist but is no owner: she reads, and is told why she cannot change things.
        Assert.Equal("This chat: today $0.00 spent, no limit · this month $0.00 spent, no limit · set one with /budget daily 5 monthly 50",
            await AskAsync(AlicePrivate, TelegramUser.Alice, "/budget"));
        Assert.Equal("❌ only an owner of this bot may set budgets: members may chat, list tasks and see the status and budget",
            await AskAsync(AlicePrivate, TelegramUser.Alice, "/budget daily 5"));
        Assert.StartsWith("❌ only an owner of this bot may use /schedule", await AskAsync(AlicePrivate, TelegramUser.Alice, "/schedule interval 1h check"));
        Assert.Empty(await loop.Node.Get<TaskService>().ListAsync(Caller.User, null, CancellationToken.None));

        // Bob owns the bot: his limits hold, and a slip is answered with how to write it.
        var set = await AskAsync(bobPrivate, TelegramUser.Bob, "/budget daily 5 monthly 50");
        Assert.Matches(@"^This chat: today \$0\.00 of \$5\.00 \(resets \d{4}-\d\d-\d\d 00:00 UTC\) · this month \$0\.00 of \$50\.00 \(resets \d{4}-\d\d-01 00:00 UTC\)$", set);
        var channel = (await loop.Node.Get<ChannelService>().FindChatChannelAsync("telegram", Id(bobPrivate.Id), CancellationToken.None))!;
        var budget = await loop.Node.Get<BudgetService>().GetAsync(Caller.User, Loop.Domain.Budgets.BudgetScope.Channel, channel.Id, CancellationToken.None);
        Assert.Equal((5m, 50m), (budget.Limits.DailyUsd, budget.Limits.MonthlyUsd));
        Assert.Contains("today $0.00 spent, no limit · this month $0.00 of $50.00", await AskAsync(bobPrivate, TelegramUser.Bob, "/budget daily none"));
        Assert.Equal("❌ daily must be a number of USD like 5 or 2.50, or none (found \"lots\")\n" + TelegramCommands.BudgetUsage,
            await AskAsync(bobPrivate, TelegramUser.Bob, "/budget daily lots"));
        Assert.StartsWith("❌ \"weekly\" is not daily or monthly", await AskAsync(bobPrivate, TelegramUser.Bob, "/budget weekly 5"));
        Assert.Empty(loop.Sandbox.Prompts);
    }

    [Fact]
    public async Task A_refused_token_fails_the_connector_for_good()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await TelegramHarness.StartAsync(telegram, token: "123456:not-a-real-token");

        await Eventually.WaitAsync(() => loop.Adapter.Status.StartsWith("failed", StringComparison.Ordinal), "the connector failed");

        Assert.Equal("failed: Telegram refused the token (401 Unauthorized)", loop.Adapter.Status);
        var store = loop.Node.Get<Loop.Domain.ILoopStore>();
        await Eventually.WaitAsync(() => store.ListConnectorsAsync(CancellationToken.None).Result.Single().Status.State == "failed", "the failure stored");
    }

    [Fact]
    public void Markdown_becomes_telegram_html_that_parses()
    {
        var html = TelegramFormatter.ToHtml("# Title\n- **bold** _it_ ~~gone~~ `a<b>` [docs](https://example.com/?a=1&b=2)\n> quoted\nsnake_case_name 3 < 4 & 5 > 2\n```js\nif (a < b) {}\n```");
        var parsed = TelegramMarkup.Parse(html, "HTML");

        Assert.Equal("Title\n• bold it gone a<b> docs\nquoted\nsnake_case_name 3 < 4 & 5 > 2\nif (a < b) {}", parsed.Text);
        Assert.Equal(["bold", "bold", "italic", "strikethrough", "code", "text_link", "blockquote", "pre"],
            parsed.Entities.Select(e => (string)e!["type"]!));
    }
}
