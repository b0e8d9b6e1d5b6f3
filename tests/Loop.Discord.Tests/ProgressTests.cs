namespace Loop.Discord.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>
/// A run's progress as a Discord user sees it, from a real <c>loop serve</c> with the agent in a container
/// (the <c>claude</c> test double announcing tool calls): one status message, edited in place with the tool
/// calls and then with how the run ended, a Stop button that cancels the run, and the answer as a
/// message of its own. How often the status is edited is <c>RunProgressTests</c>' business (a test clock).
/// </summary>
public sealed class ProgressTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_runs_tool_calls_show_in_one_status_message_edited_in_place_and_the_answer_comes_as_a_message_of_its_own()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var loop = await StartLoopAsync(discord);
        var gateway = await discord.WaitForReadyAsync();

        var mention = Mention(discord, "[[tool Read file_path=src/app.ts]] [[tool Bash command=npm test]] [[sleep 3]] [[reply all 12 tests pass]]");
        await gateway.DispatchAsync("MESSAGE_CREATE", mention);
        await WaitForAsync(loop, () => discord.MessagesIn(DiscordDouble.GeneralChannel).Count >= 2, "the status and the reply");
        var status = await WaitForLastEditAsync(discord, loop);

        // Two messages: the status first, then the answer, a reply to the mention, with no button.
        var messages = discord.CurrentMessagesIn(DiscordDouble.GeneralChannel);
        Assert.Equal(2, messages.Count);
        Assert.Equal((string?)status["id"], (string?)messages[0]["id"]);
        Assert.Equal("all 12 tests pass", (string?)messages[1]["content"]);
        Assert.Equal((string?)mention["id"], (string?)messages[1]["message_reference"]!["message_id"]);
        Assert.Empty(messages[1]["components"]!.AsArray());

        // The status was posted with a Stop button naming the run, and edited with the tool calls while it worked.
        var run = await OnlyRunAsync(loop);
        var created = discord.MessagesIn(DiscordDouble.GeneralChannel)[0];
        Assert.StartsWith("⏳ Working…", (string)created["content"]!);
        Assert.Equal($"loop:stop:{run["id"]}", StopButtonOf(created));
        var edits = discord.EditsOf((string)status["id"]!);
        var working = edits.Select(e => e.Body).First(e => ((string)e["content"]!).Contains("Running `npm test`", StringComparison.Ordinal));
        Assert.Matches(@"^⏳ Working… \d+ s · 2 tool calls\n• Reading `src/app.ts`\n• Running `npm test`$", (string)working["content"]!);
        Assert.Equal($"loop:stop:{run["id"]}", StopButtonOf(working));

        // Its last edit says how the run ended and takes the button away; the answer is not in it.
        Assert.Matches(@"^✅ Done in \d+ s · 2 tool calls\n• Reading `src/app.ts`\n• Running `npm test`$", (string)status["content"]!);
        Assert.Empty(status["components"]!.AsArray());
        Assert.All(edits, e => Assert.DoesNotContain("all 12 tests pass", (string)e.Body["content"]!));
        Assert.Equal("succeeded", (string?)run["status"]);
    }

    [Fact]
    public async Task The_stop_button_cancels_the_run_and_the_status_says_it_was_stopped()
    {
        await using var discord = await DiscordDouble.StartAsync();
        discord.AddGuildChannel(OtherChannel, "random");
        await using var loop = await StartLoopAsync(discord);
        var gateway = await discord.WaitForReadyAsync();

        await gateway.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[tool Bash command=make release]] [[sleep 600]] [[reply released]]"));
        await WaitForAsync(loop, () => discord.CurrentMessagesIn(DiscordDouble.GeneralChannel).Any(m => ((string)m["content"]!).Contains("Running `make release`", StringComparison.Ordinal)),
            "the status listing the tool call");
        var status = discord.CurrentMessagesIn(DiscordDouble.GeneralChannel).Single();
        var stop = StopButtonOf(status)!;

        // A button copied into another channel stops nothing there: the click is answered, only to the clicker.
        var elsewhere = discord.ButtonClick(OtherChannel, status, stop);
        await gateway.DispatchAsync("INTERACTION_CREATE", elsewhere);
        var refusal = await CallbackAsync(discord, loop, elsewhere);
        Assert.Equal(4, (int)refusal.Body!["type"]!);
        Assert.Equal(64, (int)refusal.Body["data"]!["flags"]!);
        Assert.StartsWith("❌ This button cannot stop run", (string)refusal.Body["data"]!["content"]!);
        Assert.Equal("running", (string?)(await OnlyRunAsync(loop))["status"]);

        var click = discord.ButtonClick(DiscordDouble.GeneralChannel, status, stop);
        await gateway.DispatchAsync("INTERACTION_CREATE", click);
        var ack = await CallbackAsync(discord, loop, click);
        Assert.Equal(6, (int)ack.Body!["type"]!);
        Assert.Equal(204, ack.Status); // within Discord's 3 s: a late answer gets 404 Unknown interaction

        var stopped = await WaitForLastEditAsync(discord, loop);
        Assert.Matches(@"^⏹️ Stopped after \d+ s · 1 tool call\n• Running `make release`$", (string)stopped["content"]!);
        Assert.Empty(stopped["components"]!.AsArray());
        Assert.Equal("cancelled", (string?)(await OnlyRunAsync(loop))["status"]);
        // As for a cancel through the API: the channel is told the run was cancelled, and no answer comes.
        await WaitForAsync(loop, () => discord.MessagesIn(DiscordDouble.GeneralChannel).Count >= 2, "the cancelled run's reply");
        Assert.Equal(["The run was cancelled."], discord.CurrentMessagesIn(DiscordDouble.GeneralChannel).Skip(1).Select(m => (string?)m["content"]));
    }

    [Fact]
    public async Task Once_the_bot_has_owners_a_member_may_stop_the_run_of_their_own_message_and_is_refused_anothers()
    {
        const string Bob = "510000000000000051", Carol = "520000000000000052";
        await using var discord = await DiscordDouble.StartAsync();
        await using var loop = await StartLoopAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        using (var roles = await loop.Http.PutAsJsonAsync("/api/connectors/discord/roles", new { owners = new[] { DiscordDouble.UserId }, members = new[] { Bob, Carol } }))
        {
            Assert.Equal(HttpStatusCode.OK, roles.StatusCode);
        }

        await gateway.DispatchAsync("MESSAGE_CREATE", discord.MessageCreate(DiscordDouble.GeneralChannel,
            $"<@{DiscordDouble.BotId}> [[tool Bash command=make release]] [[sleep 600]] [[reply released]]", authorId: Bob, authorName: "bob", mentionsBot: true));
        await WaitForAsync(loop, () => discord.CurrentMessagesIn(DiscordDouble.GeneralChannel).Any(m => ((string)m["content"]!).Contains("Running `make release`", StringComparison.Ordinal)),
            "the status listing the tool call");
        var status = discord.CurrentMessagesIn(DiscordDouble.GeneralChannel).Single();
        var stop = StopButtonOf(status)!;

        // Carol, a member too, may not stop the run Bob asked for: she alone is told why, and it goes on.
        var byCarol = ClickBy(discord, status, stop, Carol, "carol");
        await gateway.DispatchAsync("INTERACTION_CREATE", byCarol);
        var refusal = await CallbackAsync(discord, loop, byCarol);
        Assert.Equal(4, (int)refusal.Body!["type"]!);
        Assert.Equal(64, (int)refusal.Body["data"]!["flags"]!);
        Assert.Equal("❌ Only an owner of this bot may stop a run someone else asked for: members may stop their own.", (string?)refusal.Body["data"]!["content"]);
        Assert.Equal("running", (string?)(await OnlyRunAsync(loop))["status"]);

        // Bob may stop his own.
        var byBob = ClickBy(discord, status, stop, Bob, "bob");
        await gateway.DispatchAsync("INTERACTION_CREATE", byBob);
        Assert.Equal(6, (int)(await CallbackAsync(discord, loop, byBob)).Body!["type"]!);
        var stopped = await WaitForLastEditAsync(discord, loop);
        Assert.StartsWith("⏹️ Stopped after", (string)stopped["content"]!);
        Assert.Equal("cancelled", (string?)(await OnlyRunAsync(loop))["status"]);
    }

    [Fact]
    public async Task A_channel_whose_progress_is_off_gets_no_status_message()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var loop = await StartLoopAsync(discord);
        var gateway = await discord.WaitForReadyAsync();
        await gateway.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[tool Read file_path=README.md]] [[reply first]]"));
        await WaitForLastEditAsync(discord, loop);
        await WaitForAsync(loop, () => discord.MessagesIn(DiscordDouble.GeneralChannel).Count >= 2, "the first reply");
        var channel = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray().Single(c => (string?)c!["name"] == "general")!;
        Assert.Equal("tools", (string?)channel["progress"]);

        using (var off = await loop.Http.PatchAsJsonAsync($"/api/channels/{channel["id"]}", new { progress = "off" }))
        {
            Assert.Equal(HttpStatusCode.OK, off.StatusCode);
        }
        Assert.Equal("off", (string?)JsonNode.Parse(await loop.Http.GetStringAsync($"/api/channels/{channel["id"]}"))!["progress"]);
        await gateway.DispatchAsync("MESSAGE_CREATE", Mention(discord, "[[tool Read file_path=README.md]] [[reply second]]"));
        await WaitForAsync(loop, () => discord.MessagesIn(DiscordDouble.GeneralChannel).Count >= 3, "the second reply");

        var messages = discord.CurrentMessagesIn(DiscordDouble.GeneralChannel);
        Assert.Equal(3, messages.Count);
        Assert.StartsWith("✅ Done in", (string)messages[0]["content"]!);
        Assert.Equal(["first", "second"], messages.Skip(1).Select(m => (string?)m["content"]));
        Assert.Equal(1, discord.MessagesIn(DiscordDouble.GeneralChannel).Count(m => m["components"] is not null));
    }

    private const string OtherChannel = "410000000000000041";

    private static Task<LoopDaemon> StartLoopAsync(DiscordDouble discord) => LoopDaemon.StartAsync(new JsonObject
    {
        ["discord_token"] = DiscordDouble.Token,
        ["discord_app_id"] = DiscordDouble.AppId,
        ["discord_api_url"] = discord.ApiUrl,
        ["discord_gateway_url"] = discord.GatewayUrl,
    });

    private static JsonObject Mention(DiscordDouble discord, string text) =>
        discord.MessageCreate(DiscordDouble.GeneralChannel, $"<@{DiscordDouble.BotId}> {text}", mentionsBot: true);

    private static string? StopButtonOf(JsonNode message) =>
        message["components"]?.AsArray().SelectMany(row => row!["components"]!.AsArray())
            .SingleOrDefault(b => (int?)b!["type"] == 2 && (string?)b["label"] == "Stop")?["custom_id"]?.ToString();

    /// <summary>The status message once its last edit (the one without the button) came.</summary>
    private static async Task<JsonObject> WaitForLastEditAsync(DiscordDouble discord, LoopDaemon loop)
    {
        await WaitForAsync(loop, () => discord.CurrentMessagesIn(DiscordDouble.GeneralChannel) is [var first, ..]
            && discord.EditsOf((string)first["id"]!).Any(e => e.Body["components"] is JsonArray { Count: 0 }), "the status's last edit");
        return discord.CurrentMessagesIn(DiscordDouble.GeneralChannel)[0];
    }

    /// <summary>A click on the status's button by a guild member other than alice.</summary>
    private static JsonObject ClickBy(DiscordDouble discord, JsonObject status, string customId, string userId, string username)
    {
        var click = discord.ButtonClick(DiscordDouble.GeneralChannel, status, customId);
        click["member"]!["user"]!["id"] = userId;
        click["member"]!["user"]!["username"] = username;
        return click;
    }

    private static async Task<RestCall> CallbackAsync(DiscordDouble discord, LoopDaemon loop, JsonObject interaction)
    {
        var path = $"interactions/{interaction["id"]}/{interaction["token"]}/callback";
        await WaitForAsync(loop, () => discord.Calls.Any(c => c.Path == path), "the answer to the click");
        return discord.Calls.Single(c => c.Path == path);
    }

    private static async Task<JsonNode> OnlyRunAsync(LoopDaemon loop)
    {
        var channel = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray().Single(c => (string?)c!["name"] == "general")!;
        return JsonNode.Parse(await loop.Http.GetStringAsync($"/api/channels/{channel["id"]}/runs"))!.AsArray()[0]!;
    }

    private static async Task WaitForAsync(LoopDaemon loop, Func<bool> condition, string what)
    {
        try
        {
            await Eventually.WaitAsync(condition, what, RunTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"timed out waiting for {what}; loop serve said:\n{loop.Output}");
        }
    }
}
