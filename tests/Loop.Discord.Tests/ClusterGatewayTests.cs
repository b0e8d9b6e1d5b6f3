namespace Loop.Discord.Tests;

using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;
using Xunit.Abstractions;

/// <summary>
/// Discord delivers every message to each gateway connection of the bot: in a cluster, one node
/// listens at a time and the others stand by, and a node left takes the gateway over when the
/// listening one dies. Three real <c>loop serve</c> nodes on one PostgreSQL, the Discord double.
/// </summary>
public sealed partial class ClusterGatewayTests(ITestOutputHelper output)
{
    [Fact]
    public async Task One_node_holds_the_gateway_and_when_it_is_killed_another_takes_it_over_and_answers()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var cluster = await LoopCluster.StartAsync(3, ConfigFor(discord));
        var first = await discord.WaitForReadyAsync(0);
        // Once every node has asked for the gateway, a second listener would have connected by now.
        var statuses = await StatusesOnceSettledAsync(cluster, cluster.Nodes);
        var holder = cluster.Nodes.Single(n => statuses[n].StartsWith("connected", StringComparison.Ordinal));
        Assert.All(cluster.Nodes.Where(n => n != holder), n => Assert.Equal($"standby: {cluster.NameOf(holder)} holds the connection", statuses[n]));
        Assert.Single(discord.Connections, c => !c.Ended);
        var listed = (await cluster.Nodes.First(n => n != holder).GetObjectAsync("/api/cluster"))["nodes"]!.AsArray();
        Assert.All(listed, n => Assert.Equal((string)n!["name"]! == cluster.NameOf(holder) ? new[] { "discord" } : [],
            n!["holds"]!.AsArray().Select(h => (string)h!)));

        await first.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[reply one]]"));
        await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 1, TimeSpan.FromSeconds(120));

        var killedAt = Stopwatch.StartNew();
        await holder.KillAsync();
        var second = await discord.WaitForReadyAsync(1);
        output.WriteLine($"a new node listened {killedAt.ElapsedMilliseconds} ms after the holder was killed");
        var survivors = cluster.Nodes.Where(n => n != holder).ToList();
        statuses = await StatusesOnceSettledAsync(cluster, survivors);
        Assert.Single(survivors, n => statuses[n].StartsWith("connected", StringComparison.Ordinal));
        Assert.Single(discord.Connections, c => !c.Ended);

        // The new session gets a message, then the same message again (Discord may deliver one twice
        // around a reconnect), then another: each is answered once. Messages of one socket are taken in
        // order, so the repeat has been dealt with when the last one is answered.
        var two = Mention(discord, "[[reply two]]");
        await second.DispatchAsync("MESSAGE_CREATE", two);
        await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 2, TimeSpan.FromSeconds(120));
        await second.DispatchAsync("MESSAGE_CREATE", two.DeepClone());
        await second.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[reply three]]"));
        var replies = await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 3, TimeSpan.FromSeconds(120));

        Assert.Equal(["one", "two", "three"], replies.Select(r => (string)r["content"]!));
        var channel = (await survivors[0].GetArrayAsync("/api/channels")).Single(c => (string?)c!["name"] == "general")!;
        var messages = await survivors[0].GetArrayAsync($"/api/channels/{channel["id"]}/messages");
        Assert.Equal(["user", "agent", "user", "agent", "user", "agent"], messages.Select(m => (string)m!["role"]!));
    }

    [Fact]
    public async Task A_reply_its_node_died_before_posting_is_posted_once_by_a_node_left()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var cluster = await LoopCluster.StartAsync(2, ConfigFor(discord));

        // The run ends and its reply is on its way when the node that ran it dies.
        var survivor = await KillWhilePostingAsync(discord, cluster, "posted by a node left",
            discord.StallNext("POST", $"channels/{DiscordDouble.GeneralChannel}/messages"));

        var reply = Assert.Single(await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 1, TimeSpan.FromSeconds(120)));
        Assert.Equal("posted by a node left", (string?)reply["content"]);
        Assert.Contains("stopped before posting its reply; posting it from here", survivor.Output);
        // The next answer comes after it: the recovered one was posted once.
        var live = await LiveGatewayAsync(discord);
        await live.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[reply the next one]]"));
        Assert.Equal(["posted by a node left", "the next one"],
            (await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 2, TimeSpan.FromSeconds(120))).Select(m => (string?)m["content"]));
    }

    [Fact]
    public async Task A_reply_its_node_posted_just_before_dying_is_not_posted_again_by_the_node_left()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var cluster = await LoopCluster.StartAsync(2, ConfigFor(discord));

        // Discord has made the message, but the node dies before it hears so (and before its store knows).
        var survivor = await KillWhilePostingAsync(discord, cluster, "said once",
            discord.StallAnswerToNext("POST", $"channels/{DiscordDouble.GeneralChannel}/messages"));

        // The node left posts it again with the same nonce, and Discord answers with the first message.
        await Eventually.WaitAsync(() => survivor.Output.Contains("stopped before posting its reply; posting it from here", StringComparison.Ordinal)
            && discord.Calls.Count(c => c.Method == "POST" && c.Path == $"channels/{DiscordDouble.GeneralChannel}/messages") == 2,
            "the node left to post the reply again", TimeSpan.FromSeconds(120));
        var live = await LiveGatewayAsync(discord);
        await live.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[reply the next one]]"));
        Assert.Equal(["said once", "the next one"],
            (await discord.WaitForMessagesAsync(DiscordDouble.GeneralChannel, 2, TimeSpan.FromSeconds(120))).Select(m => (string?)m["content"]));
    }

    /// <summary>Asks for <paramref name="reply"/>, kills the node that ran it once its post is held at
    /// <paramref name="stalled"/>, and returns the node left.</summary>
    private static async Task<LoopDaemon> KillWhilePostingAsync(DiscordDouble discord, LoopCluster cluster, string reply, Task stalled)
    {
        var gateway = await discord.WaitForReadyAsync(0);
        await gateway.DispatchAsync("MESSAGE_CREATE", Mention(discord, $"[[reply {reply}]]"));
        await stalled.WaitAsync(TimeSpan.FromSeconds(120));
        var ranIt = cluster.Nodes.Single(n => RunSucceeded().IsMatch(n.Output));
        await ranIt.KillAsync();
        return cluster.Nodes.Single(n => n != ranIt);
    }

    /// <summary>The one gateway connection that is open and ready (a new one when its node died).</summary>
    private static async Task<GatewayConnection> LiveGatewayAsync(DiscordDouble discord)
    {
        await Eventually.WaitAsync(() => discord.Connections.Count(c => !c.Ended && c.ReadySent) == 1, "one live gateway connection", TimeSpan.FromSeconds(60));
        return discord.Connections.Single(c => !c.Ended && c.ReadySent);
    }

    [GeneratedRegex(@"Run run_\S+ for channel \S+ succeeded")]
    private static partial Regex RunSucceeded();

    private static JsonObject ConfigFor(DiscordDouble discord) => new()
    {
        ["discord_token"] = DiscordDouble.Token,
        ["discord_app_id"] = DiscordDouble.AppId,
        ["discord_api_url"] = discord.ApiUrl,
        ["discord_gateway_url"] = discord.GatewayUrl,
        // These tests count replies and stall the first post; ProgressTests show the status messages.
        ["discord_progress"] = "off",
    };

    private static JsonObject Mention(DiscordDouble discord, string text) =>
        discord.MessageCreate(DiscordDouble.GeneralChannel, $"<@{DiscordDouble.BotId}> {text}", mentionsBot: true);

    /// <summary>The discord status of each node's /api/health, once every node says either that it is
    /// connected or which node holds the connection.</summary>
    private static async Task<Dictionary<LoopDaemon, string>> StatusesOnceSettledAsync(LoopCluster cluster, IReadOnlyList<LoopDaemon> nodes)
    {
        var statuses = new Dictionary<LoopDaemon, string>();
        await Eventually.WaitAsync(async () =>
        {
            foreach (var node in nodes)
            {
                var chats = (await node.GetObjectAsync("/api/health"))["chats"]!.AsArray();
                statuses[node] = (string)chats.Single(c => (string?)c!["platform"] == "discord")!["status"]!;
            }
            return statuses.Values.All(s => s.StartsWith("connected", StringComparison.Ordinal) || s.StartsWith("standby", StringComparison.Ordinal))
                && statuses.Values.Count(s => s.StartsWith("connected", StringComparison.Ordinal)) == 1;
        }, "every node to know who holds the gateway:\n" + cluster.Outputs(), TimeSpan.FromSeconds(60));
        return statuses;
    }
}
