namespace Loop.Telegram.Tests;

using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>
/// The whole path as a user meets it: a real <c>loop serve</c> with the config's telegram_* keys,
/// polling the Bot API double, a private message run in a real container (the agent test image with
/// the <c>claude</c> test double), and the reply sent to the chat as a reply to the message.
/// </summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task A_private_message_runs_the_agent_in_a_container_and_the_reply_comes_back_to_telegram()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartLoopAsync(telegram);
        var chat = TelegramChat.Private(TelegramUser.Alice);

        var trigger = telegram.EnqueueMessage(chat, TelegramUser.Alice, "[[reply hello from the container]] [[pwd]]");
        try
        {
            await Eventually.WaitAsync(() => telegram.SentTo(chat.Id).Count > 0, "the reply", TimeSpan.FromSeconds(120));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no reply reached Telegram; loop serve said:\n{loop.Output}");
        }

        var reply = Assert.Single(telegram.SentTo(chat.Id));
        Assert.Contains("hello from the container", reply.Text);
        Assert.Equal((int)trigger["message_id"]!, (int?)reply.Message["reply_to_message"]?["message_id"]);
        Assert.Contains(telegram.CallsTo("sendChatAction"), c => (string?)c.Body["action"] == "typing");
        Assert.Equal(0, telegram.PendingUpdates());

        var health = JsonNode.Parse(await loop.Http.GetStringAsync("/api/health"))!;
        Assert.Contains(health["chats"]!.AsArray(), c => (string?)c!["platform"] == "telegram"
            && (string?)c["status"] == $"connected as @{TelegramDouble.BotUsername}");
        var channels = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray();
        var channel = channels.Single(c => (string?)c!["name"] == "Alice Liddell (@alice_example)")!;
        var run = JsonNode.Parse(await loop.Http.GetStringAsync($"/api/channels/{channel["id"]}/runs"))!.AsArray().Single()!;
        Assert.Equal("succeeded", (string?)run["status"]);
        Assert.False(string.IsNullOrEmpty((string?)run["container_id"]));
    }

    [Fact]
    public async Task A_reply_whose_daemon_was_killed_before_it_reached_telegram_is_sent_once_after_the_restart()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartLoopAsync(telegram);
        var chat = TelegramChat.Private(TelegramUser.Alice);

        // The run ends and its reply is on its way when the daemon dies.
        var replying = telegram.StallNext("sendMessage");
        var trigger = telegram.EnqueueMessage(chat, TelegramUser.Alice, "[[reply sent after the crash]]");
        await replying.WaitAsync(TimeSpan.FromSeconds(120));
        await loop.KillAsync();
        Assert.Empty(telegram.SentTo(chat.Id));

        await loop.RestartAsync();
        var reply = Assert.Single(await telegram.WaitForSentAsync(chat.Id, 1, TimeSpan.FromSeconds(120)));
        Assert.Equal("sent after the crash", reply.Text);
        Assert.Equal((int)trigger["message_id"]!, (int?)reply.Message["reply_to_message"]?["message_id"]);
        // The next answer comes after it: the recovered one was sent once.
        telegram.EnqueueMessage(chat, TelegramUser.Alice, "[[reply the next one]]");
        Assert.Equal(["sent after the crash", "the next one"], (await telegram.WaitForSentAsync(chat.Id, 2, TimeSpan.FromSeconds(120))).Select(m => m.Text));
        Assert.Contains("stopped before posting its reply; posting it from here", loop.Output);
    }

    [Fact]
    public async Task A_connector_in_direct_mode_answers_through_the_anthropic_api_without_a_container()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var api = await AnthropicDouble.StartAsync();
        await using var loop = await StartLoopAsync(telegram,
            new JsonObject { ["telegram_mode"] = "direct", ["telegram_model"] = "claude-haiku-4-5", ["anthropic_base_url"] = api.BaseUrl },
            new Dictionary<string, string?> { ["ANTHROPIC_API_KEY"] = AnthropicDouble.ApiKey });
        var chat = TelegramChat.Private(TelegramUser.Alice);
        api.Enqueue(new AnthropicAnswer.Reply("Hello Alice, straight from the API."));

        var trigger = telegram.EnqueueMessage(chat, TelegramUser.Alice, "Hi there");

        var reply = Assert.Single(await telegram.WaitForSentAsync(chat.Id, 1, TimeSpan.FromSeconds(60)));
        Assert.Equal("Hello Alice, straight from the API.", reply.Text);
        Assert.Equal((int)trigger["message_id"]!, (int?)reply.Message["reply_to_message"]?["message_id"]);
        var call = Assert.Single(api.Calls);
        Assert.Equal("claude-haiku-4-5", call.Model);
        Assert.EndsWith(": Hi there", Assert.Single(call.Messages).Text);
        var channel = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray()
            .Single(c => (string?)c!["name"] == "Alice Liddell (@alice_example)")!;
        Assert.Equal("direct", (string?)channel["mode"]);
        Assert.Equal("claude-haiku-4-5", (string?)channel["model"]);
        var run = JsonNode.Parse(await loop.Http.GetStringAsync($"/api/channels/{channel["id"]}/runs"))!.AsArray().Single()!;
        Assert.Equal("succeeded", (string?)run["status"]);
        Assert.Null(run["container_id"]);
        Assert.Empty(await DockerCli.ContainersAsync($"loop.channel={channel["id"]}"));
    }

    /// <summary>A daemon with the telegram_* keys (and <paramref name="extra"/> ones), once it has registered the bot's commands.</summary>
    private static async Task<LoopDaemon> StartLoopAsync(TelegramDouble telegram, JsonObject? extra = null, Dictionary<string, string?>? environment = null)
    {
        var config = new JsonObject
        {
            ["telegram_token"] = TelegramDouble.Token,
            ["telegram_api_url"] = telegram.BaseUrl,
            ["telegram_allowed_users"] = new JsonArray("@alice_example"),
            // The status message while the agent works is ProgressTests' business.
            ["telegram_progress"] = "off",
        };
        foreach (var (key, value) in extra ?? [])
        {
            config[key] = value?.DeepClone();
        }
        var loop = await LoopDaemon.StartAsync(config, environment);
        try
        {
            await Eventually.WaitAsync(() => telegram.Commands() is not null, "commands registered", TimeSpan.FromSeconds(60));
        }
        catch
        {
            await loop.DisposeAsync();
            throw;
        }
        return loop;
    }
}
