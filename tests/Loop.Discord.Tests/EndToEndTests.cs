namespace Loop.Discord.Tests;

using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>
/// The whole path as a user meets it: a real <c>loop serve</c> connected to the Discord double, a
/// MESSAGE_CREATE from the gateway, a run in a real container (the agent test image with the
/// <c>claude</c> test double), and the reply POSTed to Discord.
/// </summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task A_mention_runs_the_agent_in_a_container_and_the_reply_comes_back_to_discord()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var loop = await StartLoopAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        await Eventually.WaitAsync(() => discord.Calls.Any(c => c.Method == "PUT"), "command registration", TimeSpan.FromSeconds(30));

        var mention = discord.MessageCreate(DiscordDouble.GeneralChannel,
            $"<@{DiscordDouble.BotId}> [[reply hello from the container]] [[pwd]]", mentionsBot: true);
        await gateway.DispatchAsync("MESSAGE_CREATE", mention);
        JsonNode reply;
        try
        {
            reply = (await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 1, TimeSpan.FromSeconds(120))).Single();
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no reply reached Discord; loop serve said:\n{loop.Output}");
        }

        var content = (string)reply["content"]!;
        Assert.Contains("hello from the container", content);
        Assert.Equal((string?)mention["id"], (string?)reply["message_reference"]!["message_id"]);
        Assert.Contains(discord.Calls, c => c.Path == $"channels/{DiscordDouble.GeneralChannel}/typing");

        var health = JsonNode.Parse(await loop.Http.GetStringAsync("/api/health"))!;
        Assert.Contains(health["chats"]!.AsArray(), c => (string?)c!["platform"] == "discord" && ((string?)c["status"])!.StartsWith("connected", StringComparison.Ordinal));
        var channels = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray();
        var channel = channels.Single(c => (string?)c!["name"] == "general")!;
        var runs = JsonNode.Parse(await loop.Http.GetStringAsync($"/api/channels/{channel["id"]}/runs"))!.AsArray();
        var run = runs.Single()!;
        Assert.Equal("succeeded", (string?)run["status"]);
        Assert.False(string.IsNullOrEmpty((string?)run["container_id"]));
    }

    [Fact]
    public async Task A_reply_whose_daemon_was_killed_before_it_reached_discord_is_posted_once_after_the_restart()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var loop = await StartLoopAsync(discord);
        var gateway = await discord.WaitForReadyAsync();

        // The run ends and its reply is on its way when the daemon dies.
        var replying = discord.StallNext("POST", $"channels/{DiscordDouble.GeneralChannel}/messages");
        var mention = discord.MessageCreate(DiscordDouble.GeneralChannel, $"<@{DiscordDouble.BotId}> [[reply posted after the crash]]", mentionsBot: true);
        await gateway.DispatchAsync("MESSAGE_CREATE", mention);
        await replying.WaitAsync(TimeSpan.FromSeconds(120));
        await loop.KillAsync();
        Assert.Empty(discord.MessagesIn(DiscordDouble.GeneralChannel));

        await loop.RestartAsync();
        var reply = Assert.Single(await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 1, TimeSpan.FromSeconds(120)));
        Assert.Equal("posted after the crash", (string?)reply["content"]);
        Assert.Equal((string?)mention["id"], (string?)reply["message_reference"]!["message_id"]);
        // The next answer comes after it: the recovered one was posted once.
        var next = discord.MessageCreate(DiscordDouble.GeneralChannel, $"<@{DiscordDouble.BotId}> [[reply the next one]]", mentionsBot: true);
        await (await discord.WaitForReadyAsync(1)).DispatchAsync("MESSAGE_CREATE", next);
        Assert.Equal(["posted after the crash", "the next one"],
            (await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 2, TimeSpan.FromSeconds(120))).Select(m => (string?)m["content"]));
    }

    private static Task<LoopDaemon> StartLoopAsync(DiscordDouble discord) => LoopDaemon.StartAsync(new JsonObject
    {
        ["discord_token"] = DiscordDouble.Token,
        ["discord_app_id"] = DiscordDouble.AppId,
        ["discord_api_url"] = discord.ApiUrl,
        ["discord_gateway_url"] = discord.GatewayUrl,
        // These tests count replies and stall the first post; ProgressTests show the status messages.
        ["discord_progress"] = "off",
    });
}
