namespace Loop.Discord.Tests;

using System.Text.Json.Nodes;
using Loop.Runtime;

/// <summary>Each <c>/loop</c> subcommand through an INTERACTION_CREATE, as a person in Discord uses it.</summary>
public sealed class SlashCommandTests : IAsyncLifetime
{
    private const string General = DiscordDouble.GeneralChannel;
    private DiscordDouble _discord = null!;
    private BotHarness _bot = null!;
    private GatewayConnection _gateway = null!;

    public async Task InitializeAsync()
    {
        _discord = await DiscordDouble.StartAsync();
        _bot = await BotHarness.StartAsync(_discord);
        _gateway = await _discord.WaitForReadyAsync();
    }

    public async Task DisposeAsync()
    {
        await _bot.DisposeAsync();
        await _discord.DisposeAsync();
    }

    /// <summary>Sends the command and returns what the deferred response was filled in with.</summary>
    private async Task<string> RunAsync(string subcommand, params (string Name, string Value)[] options) =>
        await RunPathAsync([subcommand], options);

    private async Task<string> RunPathAsync(string[] path, params (string Name, string Value)[] options)
    {
        var leaf = new JsonArray(options.Select(o => (JsonNode)new JsonObject { ["name"] = o.Name, ["type"] = 3, ["value"] = o.Value }).ToArray());
        JsonNode command = new JsonObject { ["name"] = path[^1], ["type"] = 1, ["options"] = leaf };
        if (path.Length == 2)
        {
            command = new JsonObject { ["name"] = path[0], ["type"] = 2, ["options"] = new JsonArray(command) };
        }
        var interaction = _discord.Interaction(General, new JsonArray(command));
        var id = (string)interaction["id"]!;
        var token = (string)interaction["token"]!;
        await _gateway.DispatchAsync("INTERACTION_CREATE", interaction);

        var original = $"webhooks/{DiscordDouble.AppId}/{token}/messages/@original";
        await Eventually.WaitAsync(() => _discord.Calls.Any(c => c.Path == original), $"the answer to /loop {string.Join(' ', path)}");
        var calls = _discord.Calls;
        var deferral = calls.Single(c => c.Path == $"interactions/{id}/{token}/callback");
        Assert.Equal(5, (int)deferral.Body!["type"]!); // DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
        Assert.Null(deferral.Authorization); // interaction endpoints are authorised by the token in the path
        var answer = calls.Single(c => c.Path == original);
        Assert.Equal("PATCH", answer.Method);
        // Deferred first, before the work (Discord allows 3 s for that first answer, the work may take longer).
        Assert.True(answer.At >= deferral.At);
        return (string)answer.Body!["content"]!;
    }

    /// <summary>The Loop channel of #general; the first command there registers it.</summary>
    private async Task<string> LoopChannelAsync()
    {
        if (await _bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None) is null)
        {
            await RunAsync("tasks");
        }
        return (await _bot.Node.Channels.FindChatChannelAsync("discord", General, CancellationToken.None))!.Id;
    }

    [Fact]
    public async Task Schedule_creates_a_task_in_this_channel_and_tasks_lists_it()
    {
        var answer = await RunAsync("schedule", ("schedule", "*/5 * * * *"), ("prompt", "Check the build"), ("type", "cron"));

        var channel = await LoopChannelAsync();
        var task = (await _bot.Node.Tasks.ListAsync(Caller.User, channel, CancellationToken.None)).Single();
        Assert.Equal(("cron", "*/5 * * * *", "Check the build"), (task.Type.ToString().ToLowerInvariant(), task.Schedule, task.Prompt));
        Assert.StartsWith($"Scheduled task `{task.Id}`: cron `*/5 * * * *`, next run <t:", answer);

        var list = await RunAsync("tasks");
        Assert.Contains($"`{task.Id}` **Check the build** on", list);
    }

    [Fact]
    public async Task Schedule_with_bad_input_answers_with_the_same_message_as_the_api()
    {
        var channel = await LoopChannelAsync();
        var expected = await Assert.ThrowsAsync<LoopValidationException>(() =>
            _bot.Node.Tasks.CreateAsync(Caller.User, new NewTaskRequest(channel, "cron", "every tuesday", "x"), CancellationToken.None));
        var interval = await Assert.ThrowsAsync<LoopValidationException>(() =>
            _bot.Node.Tasks.CreateAsync(Caller.User, new NewTaskRequest(channel, "interval", "soon", "x"), CancellationToken.None));

        Assert.Equal($"❌ {expected.Message}", await RunAsync("schedule", ("schedule", "every tuesday"), ("prompt", "x"), ("type", "cron")));
        Assert.Equal($"❌ {interval.Message}", await RunAsync("schedule", ("schedule", "soon"), ("prompt", "x"), ("type", "interval")));
        Assert.Empty(await _bot.Node.Tasks.ListAsync(Caller.User, channel, CancellationToken.None));
    }

    [Fact]
    public async Task Toggle_edit_and_cancel_change_the_task()
    {
        var channel = await LoopChannelAsync();
        var task = await _bot.Node.Tasks.CreateAsync(Caller.User, new NewTaskRequest(channel, "interval", "1h", "Tidy up"), CancellationToken.None);

        Assert.StartsWith($"Task `{task.Id}` is now disabled", await RunAsync("toggle", ("task_id", task.Id)));
        Assert.False((await _bot.Node.Tasks.GetAsync(Caller.User, task.Id, CancellationToken.None)).Enabled);
        Assert.StartsWith($"Task `{task.Id}` is now enabled", await RunAsync("toggle", ("task_id", task.Id)));

        Assert.StartsWith($"Updated task `{task.Id}`: interval `30m`", await RunAsync("edit", ("task_id", task.Id), ("schedule", "30m"), ("prompt", "Tidy up more")));
        var edited = await _bot.Node.Tasks.GetAsync(Caller.User, task.Id, CancellationToken.None);
        Assert.Equal(("30m", "Tidy up more"), (edited.Schedule, edited.Prompt));
        Assert.Equal("❌ nothing to change: give a new schedule, type or prompt", await RunAsync("edit", ("task_id", task.Id)));

        Assert.Equal($"Cancelled task `{task.Id}`.", await RunAsync("cancel", ("task_id", task.Id)));
        Assert.Empty(await _bot.Node.Tasks.ListAsync(Caller.User, channel, CancellationToken.None));
        Assert.Equal($"❌ task {task.Id} does not exist", await RunAsync("cancel", ("task_id", task.Id)));
        Assert.Equal("No scheduled tasks in this channel. Add one with `/loop schedule`.", await RunAsync("tasks"));
    }

    [Fact]
    public async Task Status_shows_the_node_and_the_discord_connection()
    {
        var status = await RunAsync("status");

        Assert.StartsWith($"**Loop {LoopVersion.Current}** on test-node:", status);
        Assert.Contains("This channel: 0 task(s)", status);
        Assert.Contains("discord: connected as loop", status);
    }

    [Fact]
    public async Task Budget_shows_what_the_channel_spent_and_sets_its_limits_one_at_a_time()
    {
        var channel = await LoopChannelAsync();
        Assert.Equal("**This channel**: today $0.00 spent, no limit · this month $0.00 spent, no limit · set one with `/loop budget daily:5 monthly:50`",
            await RunAsync("budget"));

        var set = await RunAsync("budget", ("daily", "5"), ("monthly", "$50"));
        Assert.Matches(@"^\*\*This channel\*\*: today \$0\.00 of \$5\.00 \(resets <t:\d+:R>\) · this month \$0\.00 of \$50\.00 \(resets <t:\d+:R>\)$", set);
        await RunAsync("budget", ("monthly", "none"));
        var budgets = _bot.Node.Get<BudgetService>();
        var stored = await budgets.GetAsync(Caller.User, Loop.Domain.Budgets.BudgetScope.Channel, channel, CancellationToken.None);
        Assert.Equal(new Loop.Domain.Budgets.BudgetLimits(5m, null), stored.Limits);

        Assert.Equal("❌ daily must be a number of USD like 5 or 2.50, or none (found \"lots\")", await RunAsync("budget", ("daily", "lots")));
        Assert.StartsWith("❌ daily_usd must be a number of USD from 0 to 1000000", await RunAsync("budget", ("daily", "-1")));

        await budgets.SetAsync(Caller.User, Loop.Domain.Budgets.BudgetScope.Connector, "discord", new BudgetChange(null, 100m), CancellationToken.None);
        Assert.Contains("\n**Connector discord**: today $0.00 spent, no limit · this month $0.00 of $100.00 (resets <t:", await RunAsync("budget"));
    }

    [Fact]
    public async Task Template_list_add_and_autocomplete()
    {
        var list = await RunPathAsync(["template", "list"]);
        Assert.Contains("**daily-summary** (cron `0 17 * * *`): Summarise the day", list);
        Assert.Contains("**tk-auto-worker**", list);

        // Autocomplete: answered directly with choices (type 8), never deferred.
        var autocomplete = _discord.Interaction(General, new JsonArray(new JsonObject
        {
            ["name"] = "template",
            ["type"] = 2,
            ["options"] = new JsonArray(new JsonObject
            {
                ["name"] = "add",
                ["type"] = 1,
                ["options"] = new JsonArray(new JsonObject { ["name"] = "name", ["type"] = 3, ["value"] = "dai", ["focused"] = true }),
            }),
        }), type: 4);
        await _gateway.DispatchAsync("INTERACTION_CREATE", autocomplete);
        var callback = $"interactions/{autocomplete["id"]}/{autocomplete["token"]}/callback";
        await Eventually.WaitAsync(() => _discord.Calls.Any(c => c.Path == callback), "autocomplete answer");
        var choices = _discord.Calls.Single(c => c.Path == callback).Body!;
        Assert.Equal(8, (int)choices["type"]!);
        Assert.Equal("daily-summary", (string)choices["data"]!["choices"]!.AsArray().Single()!["value"]!);

        var added = await RunPathAsync(["template", "add"], ("name", "daily-summary"));
        var task = (await _bot.Node.Tasks.ListAsync(Caller.User, await LoopChannelAsync(), CancellationToken.None)).Single();
        Assert.StartsWith($"Added template **daily-summary** as task `{task.Id}`", added);
        Assert.Equal($"Template **daily-summary** is already in this channel as task `{task.Id}`.", await RunPathAsync(["template", "add"], ("name", "daily-summary")));
        Assert.StartsWith("❌ no task template named 'nope'; the configured ones are: daily-summary, tk-auto-worker", await RunPathAsync(["template", "add"], ("name", "nope")));
    }

    [Fact]
    public async Task A_long_answer_continues_in_follow_up_messages()
    {
        var channel = await LoopChannelAsync();
        for (var i = 0; i < 30; i++)
        {
            await _bot.Node.Tasks.CreateAsync(Caller.User, new NewTaskRequest(channel, "interval", $"{i + 1}h", $"Task number {i} " + new string('p', 70)), CancellationToken.None);
        }

        var first = await RunAsync("tasks");
        string Answer() => first + string.Concat(_discord.Calls
            .Where(c => c.Method == "POST" && c.Path.StartsWith($"webhooks/{DiscordDouble.AppId}/", StringComparison.Ordinal))
            .Select(f => (string)f.Body!["content"]!));
        // The follow-ups are separate requests: wait until every part has arrived.
        await Eventually.WaitAsync(() => Enumerable.Range(0, 30).All(i => Answer().Contains($"Task number {i} ", StringComparison.Ordinal)), "every task in the follow-ups");

        Assert.True(first.Length <= 2000);
        Assert.True(Answer().Length > 2000, "the answer needed follow-ups");
    }
}
