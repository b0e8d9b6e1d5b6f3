namespace Loop.Telegram.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>
/// A run's progress as a Telegram user sees it, from a real <c>loop serve</c> with the agent in a container
/// (the <c>claude</c> test double announcing tool calls): one status message with a Stop button, edited in
/// place with the tool calls and then with how the run ended, and the answer as a message of its own.
/// How often the status is edited is <c>RunProgressTests</c>' business (a test clock).
/// </summary>
public sealed class ProgressTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);
    private static readonly TelegramChat Chat = TelegramChat.Private(TelegramUser.Alice);

    [Fact]
    public async Task A_runs_tool_calls_show_in_one_status_message_edited_in_place_and_the_answer_comes_as_a_message_of_its_own()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartLoopAsync(telegram);

        var trigger = telegram.EnqueueMessage(Chat, TelegramUser.Alice,
            "[[tool Read file_path=src/app.ts]] [[tool Bash command=npm test]] [[sleep 3]] [[reply all 12 tests pass]]");
        await WaitForAsync(loop, () => telegram.SentTo(Chat.Id).Count >= 2, "the status and the reply");
        var status = await WaitForLastEditAsync(telegram, loop, Chat);

        // Two messages: the status first, then the answer, a reply to the message, with no button.
        var sent = telegram.SentTo(Chat.Id);
        Assert.Equal(2, sent.Count);
        Assert.Equal(sent[0].MessageId, (int)status["message_id"]!);
        Assert.Equal("all 12 tests pass", sent[1].Text);
        Assert.Equal((int)trigger["message_id"]!, (int?)sent[1].Message["reply_to_message"]?["message_id"]);
        Assert.Null(sent[1].Message["reply_markup"]);

        // The status was sent with a Stop button naming the run, and edited with the tool calls while it worked.
        var run = await OnlyRunAsync(loop, "Alice Liddell (@alice_example)");
        Assert.StartsWith("⏳ Working…", sent[0].Text);
        Assert.Equal($"loop:stop:{run["id"]}", StopButtonOf(sent[0].Message));
        var edits = EditsOf(telegram, sent[0].MessageId);
        var working = edits.First(e => ((string)e["text"]!).Contains("Running <code>npm test</code>", StringComparison.Ordinal));
        Assert.Matches(@"^⏳ Working… \d+ s · 2 tool calls\n• Reading <code>src/app.ts</code>\n• Running <code>npm test</code>$", (string)working["text"]!);
        Assert.Equal("html", ((string?)working["parse_mode"])?.ToLowerInvariant());
        Assert.Equal($"loop:stop:{run["id"]}", StopButtonOf(working));

        // Its last edit says how the run ended and takes the button away; the answer is not in it.
        Assert.Matches(@"^✅ Done in \d+ s · 2 tool calls\n• Reading src/app.ts\n• Running npm test$", (string)status["text"]!);
        Assert.Null(status["reply_markup"]);
        Assert.All(edits, e => Assert.DoesNotContain("all 12 tests pass", (string)e["text"]!));
        Assert.Equal("succeeded", (string?)run["status"]);
    }

    [Fact]
    public async Task The_stop_button_cancels_the_run_for_whoever_asked_for_it_and_tells_another_member_why_not()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartLoopAsync(telegram);
        var group = TelegramChat.Group();

        telegram.EnqueueMessage(group, TelegramUser.Bob, "/loop [[tool Bash command=make release]] [[sleep 600]] [[reply released]]");
        await WaitForAsync(loop, () => telegram.SentTo(group.Id) is [var first, ..]
            && ((string?)telegram.MessageIn(group.Id, first.MessageId)?["text"])?.Contains("Running make release", StringComparison.Ordinal) == true,
            "the status listing the tool call");
        var status = telegram.SentTo(group.Id)[0];
        var stop = StopButtonOf(status.Message)!;

        // Once the bot has owners, Alice and Bob (on the whitelist) are members: a member stops only what they asked for.
        using (var put = await loop.Http.PutAsJsonAsync("/api/connectors/telegram/roles", new { owners = new[] { "10000099" }, members = Array.Empty<string>() }))
        {
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }
        var refused = telegram.EnqueueCallbackQuery(group.Id, status.MessageId, TelegramUser.Alice, stop);
        var refusal = await AnswerToAsync(telegram, loop, refused);
        Assert.Equal("Only an owner of this bot may stop a run someone else asked for: members may stop their own.", (string?)refusal["text"]);
        Assert.True((bool?)refusal["show_alert"]);
        Assert.Equal("running", (string?)(await OnlyRunAsync(loop, group.Title!))["status"]);

        var press = telegram.EnqueueCallbackQuery(group.Id, status.MessageId, TelegramUser.Bob, stop);
        var answer = await AnswerToAsync(telegram, loop, press);
        Assert.Null(answer["text"]);

        var stopped = await WaitForLastEditAsync(telegram, loop, group);
        Assert.Matches(@"^⏹️ Stopped after \d+ s · 1 tool call\n• Running make release$", (string)stopped["text"]!);
        Assert.Null(stopped["reply_markup"]);
        Assert.Equal("cancelled", (string?)(await OnlyRunAsync(loop, group.Title!))["status"]);
        // As for a cancel through the API: the chat is told the run was cancelled, and no answer comes.
        await WaitForAsync(loop, () => telegram.SentTo(group.Id).Count >= 2, "the cancelled run's reply");
        Assert.Equal(["The run was cancelled."], telegram.SentTo(group.Id).Skip(1).Select(m => m.Text));
    }

    private static async Task<LoopDaemon> StartLoopAsync(TelegramDouble telegram)
    {
        var loop = await LoopDaemon.StartAsync(new JsonObject
        {
            ["telegram_token"] = TelegramDouble.Token,
            ["telegram_api_url"] = telegram.BaseUrl,
            ["telegram_allowed_users"] = new JsonArray("@alice_example", "@bob_example"),
        });
        try
        {
            await WaitForAsync(loop, () => telegram.Commands() is not null, "commands registered");
            Assert.Contains("callback_query", telegram.AllowedUpdates() ?? []);
        }
        catch
        {
            await loop.DisposeAsync();
            throw;
        }
        return loop;
    }

    private static string? StopButtonOf(JsonObject message) =>
        message["reply_markup"]?["inline_keyboard"]?.AsArray().SelectMany(row => row!.AsArray())
            .SingleOrDefault(b => (string?)b!["text"] == "Stop")?["callback_data"]?.ToString();

    private static List<JsonObject> EditsOf(TelegramDouble telegram, int messageId) =>
        [.. telegram.CallsTo("editMessageText").Where(c => c.Status == 200 && (int?)c.Body["message_id"] == messageId).Select(c => c.Body)];

    /// <summary>The status message as it stands once its last edit (the one without the button) came.</summary>
    private static async Task<JsonObject> WaitForLastEditAsync(TelegramDouble telegram, LoopDaemon loop, TelegramChat chat)
    {
        await WaitForAsync(loop, () => telegram.SentTo(chat.Id) is [var first, ..]
            && EditsOf(telegram, first.MessageId).Any(e => e["reply_markup"] is null), "the status's last edit");
        return telegram.MessageIn(chat.Id, telegram.SentTo(chat.Id)[0].MessageId)!;
    }

    private static async Task<JsonObject> AnswerToAsync(TelegramDouble telegram, LoopDaemon loop, JsonObject query)
    {
        var id = (string)query["id"]!;
        await WaitForAsync(loop, () => telegram.AnsweredCallbacks.Any(a => (string?)a["callback_query_id"] == id), "the answer to the press");
        return telegram.AnsweredCallbacks.Single(a => (string?)a["callback_query_id"] == id);
    }

    private static async Task<JsonNode> OnlyRunAsync(LoopDaemon loop, string channelName)
    {
        var channel = JsonNode.Parse(await loop.Http.GetStringAsync("/api/channels"))!.AsArray().Single(c => (string?)c!["name"] == channelName)!;
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
