namespace Loop.Telegram.Tests;

using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using global::Telegram.Bot;
using global::Telegram.Bot.Exceptions;
using global::Telegram.Bot.Polling;
using global::Telegram.Bot.Types;
using global::Telegram.Bot.Types.Enums;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>
/// The double driven by the real Telegram.Bot client: if the library can talk to it, and sees
/// what the Bot API documents, a connector tested against it is tested against the protocol.
/// </summary>
public sealed class TelegramDoubleTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly TelegramChat AlicePrivate = TelegramChat.Private(TelegramUser.Alice);

    // Bounds every call of a test: a double that stops answering fails the test instead of hanging it.
    private readonly CancellationTokenSource _patience = new(Patience);
    private TelegramDouble _telegram = null!;
    private TelegramBotClient _bot = null!;

    public async Task InitializeAsync()
    {
        _telegram = await TelegramDouble.StartAsync(cancellationToken: _patience.Token);
        _bot = Client();
    }

    public async Task DisposeAsync()
    {
        await _telegram.DisposeAsync();
        _patience.Dispose();
    }

    /// <summary>A client on the double; RetryThreshold 0 turns off the library's own 429 retry so a test sees the error.</summary>
    private TelegramBotClient Client(string token = TelegramDouble.Token, int retryThreshold = 0) =>
        new(new TelegramBotClientOptions(token, baseUrl: _telegram.BaseUrl) { RetryThreshold = retryThreshold });

    private CancellationToken Timeout() => _patience.Token;

    [Fact]
    public async Task GetMe_returns_the_bot_user()
    {
        var me = await _bot.GetMe(Timeout());

        Assert.Equal(TelegramDouble.BotId, me.Id);
        Assert.True(me.IsBot);
        Assert.Equal(TelegramDouble.BotUsername, me.Username);
        Assert.True(me.CanReadAllGroupMessages);
        Assert.Equal(_bot.BotId, me.Id);
    }

    [Fact]
    public async Task A_wrong_token_is_unauthorized()
    {
        var stranger = Client("123456:not-a-real-token");

        var error = await Assert.ThrowsAsync<ApiRequestException>(() => stranger.GetMe(Timeout()));

        Assert.Equal(401, error.ErrorCode);
        Assert.Equal("Unauthorized", error.Message);
        Assert.False(await stranger.TestApi(Timeout()));
        Assert.Equal(401, _telegram.Calls.Last().Status);
    }

    [Fact]
    public async Task GetUpdates_sees_enqueued_messages_until_an_offset_confirms_them()
    {
        var group = TelegramChat.Group();
        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "hello");
        _telegram.EnqueueMessage(group, TelegramUser.Bob, "/ask@loop_test_bot what is @alice_example doing?");

        var updates = await _bot.GetUpdates(cancellationToken: Timeout());

        Assert.Equal(2, updates.Length);
        Assert.Equal(updates[0].Id + 1, updates[1].Id);
        Assert.All(updates, u => Assert.Equal(UpdateType.Message, u.Type));
        var first = updates[0].Message!;
        Assert.Equal("hello", first.Text);
        Assert.Equal(ChatType.Private, first.Chat.Type);
        Assert.Equal(TelegramUser.Alice.Id, first.Chat.Id);
        Assert.Equal("alice_example", first.From!.Username);
        var second = updates[1].Message!;
        Assert.Equal(ChatType.Group, second.Chat.Type);
        Assert.Equal([MessageEntityType.BotCommand, MessageEntityType.Mention], second.Entities!.Select(e => e.Type));
        Assert.Equal("/ask@loop_test_bot", second.EntityValues!.First());
        Assert.Equal("@alice_example", second.EntityValues!.Last());

        // Unconfirmed updates come back; an offset past them confirms them for good.
        Assert.Equal(2, (await _bot.GetUpdates(cancellationToken: Timeout())).Length);
        Assert.Single(await _bot.GetUpdates(offset: updates[1].Id, cancellationToken: Timeout()));
        Assert.Empty(await _bot.GetUpdates(offset: updates[1].Id + 1, cancellationToken: Timeout()));
        Assert.Empty(await _bot.GetUpdates(cancellationToken: Timeout()));
        Assert.Equal(0, _telegram.PendingUpdates());
    }

    [Fact]
    public async Task GetUpdates_honours_limit_and_a_negative_offset()
    {
        for (var i = 0; i < 5; i++)
        {
            _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, $"message {i}");
        }

        var two = await _bot.GetUpdates(limit: 2, cancellationToken: Timeout());
        Assert.Equal(["message 0", "message 1"], two.Select(u => u.Message!.Text));

        // -1: only the last update survives, the earlier ones are forgotten.
        var last = await _bot.GetUpdates(offset: -1, cancellationToken: Timeout());
        Assert.Equal("message 4", Assert.Single(last).Message!.Text);
        Assert.Equal(1, _telegram.PendingUpdates());
    }

    [Fact]
    public async Task A_long_poll_returns_as_soon_as_an_update_is_queued()
    {
        var poll = _bot.GetUpdates(timeout: 50, cancellationToken: Timeout());
        await _telegram.WaitForLongPollAsync();
        Assert.False(poll.IsCompleted);

        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "wake up");

        // Far less than the 50 s the poll may wait: it came back because of the update.
        var updates = await poll.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("wake up", Assert.Single(updates).Message!.Text);
    }

    [Fact]
    public async Task A_second_getUpdates_ends_the_first_with_a_conflict()
    {
        var first = _bot.GetUpdates(timeout: 50, cancellationToken: Timeout());
        await _telegram.WaitForLongPollAsync();

        Assert.Empty(await Client().GetUpdates(cancellationToken: Timeout()));

        var error = await Assert.ThrowsAsync<ApiRequestException>(() => first);
        Assert.Equal(409, error.ErrorCode);
        Assert.Equal("Conflict: terminated by other getUpdates request; make sure that only one bot instance is running", error.Message);
    }

    [Fact]
    public async Task The_library_polling_loop_receives_and_confirms_updates()
    {
        var received = new ConcurrentQueue<Update>();
        using var stop = new CancellationTokenSource();
        _bot.StartReceiving(
            (_, update, _) => { received.Enqueue(update); return Task.CompletedTask; },
            (_, _, _, _) => Task.CompletedTask,
            new ReceiverOptions { AllowedUpdates = [UpdateType.Message] },
            stop.Token);
        await _telegram.WaitForLongPollAsync();

        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "one");
        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "two");

        await Eventually.WaitAsync(() => received.Count == 2, "two updates handled");
        Assert.Equal(["one", "two"], received.Select(u => u.Message!.Text));
        // The loop asks again with offset = last id + 1, which confirms both.
        await Eventually.WaitAsync(() => _telegram.PendingUpdates() == 0, "updates confirmed");
        Assert.Equal(["message"], _telegram.AllowedUpdates());
        await stop.CancelAsync();
    }

    [Fact]
    public async Task SendMessage_replies_in_a_forum_topic_and_gets_a_new_message_id()
    {
        var forum = TelegramChat.Supergroup(isForum: true);
        var question = _telegram.EnqueueMessage(forum, TelegramUser.Bob, "what time is it?", messageThreadId: 7);
        var questionId = (int)question["message_id"]!;

        var answer = await _bot.SendMessage(forum.Id, "<b>late</b>, go home", ParseMode.Html,
            replyParameters: questionId, messageThreadId: 7, cancellationToken: Timeout());

        Assert.NotEqual(questionId, answer.Id);
        Assert.Equal("late, go home", answer.Text);
        Assert.Equal(questionId, answer.ReplyToMessage!.Id);
        Assert.Equal("what time is it?", answer.ReplyToMessage.Text);
        Assert.Equal(7, answer.MessageThreadId);
        Assert.True(answer.IsTopicMessage);
        Assert.Equal(TelegramDouble.BotId, answer.From!.Id);
        var bold = Assert.Single(answer.Entities!);
        Assert.Equal((MessageEntityType.Bold, 0, 4), (bold.Type, bold.Offset, bold.Length));

        var sent = Assert.Single(await _telegram.WaitForSentAsync(forum.Id, 1, cancellationToken: Timeout()));
        Assert.Equal(answer.Id, sent.MessageId);
        Assert.Equal(questionId, (int)sent.Request["reply_parameters"]!["message_id"]!);
        Assert.Equal("html", ((string?)sent.Request["parse_mode"])?.ToLowerInvariant());
    }

    [Fact]
    public async Task A_reply_to_a_missing_message_is_refused_unless_allowed_without_it()
    {
        _telegram.AddChat(AlicePrivate);

        var error = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.SendMessage(AlicePrivate.Id, "hi", replyParameters: 999, cancellationToken: Timeout()));
        Assert.Equal("Bad Request: message to be replied not found", error.Message);

        var sent = await _bot.SendMessage(AlicePrivate.Id, "hi", replyParameters: new ReplyParameters { MessageId = 999, AllowSendingWithoutReply = true }, cancellationToken: Timeout());
        Assert.Null(sent.ReplyToMessage);
    }

    [Fact]
    public async Task A_chat_the_bot_never_saw_is_not_found()
    {
        var error = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.SendMessage(42, "hi", cancellationToken: Timeout()));

        Assert.Equal(400, error.ErrorCode);
        Assert.Equal("Bad Request: chat not found", error.Message);
    }

    [Fact]
    public async Task An_overlong_message_is_refused_with_the_documented_description()
    {
        _telegram.AddChat(AlicePrivate);

        var error = await Assert.ThrowsAsync<ApiRequestException>(() =>
            _bot.SendMessage(AlicePrivate.Id, new string('x', TelegramDouble.MaxTextLength + 1), cancellationToken: Timeout()));

        Assert.Equal(400, error.ErrorCode);
        Assert.Equal("Bad Request: message is too long", error.Message);
        Assert.Empty(_telegram.Sent);
        // The limit is on the text after parsing: 4096 characters plus markup pass.
        await _bot.SendMessage(AlicePrivate.Id, "*" + new string('x', TelegramDouble.MaxTextLength) + "*", ParseMode.MarkdownV2, cancellationToken: Timeout());
        Assert.Single(_telegram.Sent);
    }

    [Theory]
    [InlineData("MarkdownV2", "Version 1.5 is out", "Character '.' is reserved and must be escaped with the preceding '\\'")]
    [InlineData("MarkdownV2", "*bold without end", "Can't find end of the entity starting at byte offset 0")]
    [InlineData("HTML", "<b>bold without end", "Can't find end tag corresponding to start tag \"b\"")]
    [InlineData("HTML", "<div>no divs</div>", "Unsupported start tag \"div\" at byte offset 0")]
    [InlineData("HTML", "<b><i>crossed</b></i>", "Unmatched end tag at byte offset 13, expected \"</i>\", found \"</b>\"")]
    public async Task Malformed_markup_cannot_be_parsed(string mode, string text, string reason)
    {
        _telegram.AddChat(AlicePrivate);

        var error = await Assert.ThrowsAsync<ApiRequestException>(() =>
            _bot.SendMessage(AlicePrivate.Id, text, Enum.Parse<ParseMode>(mode, ignoreCase: true), cancellationToken: Timeout()));

        Assert.Equal(400, error.ErrorCode);
        Assert.Equal("Bad Request: can't parse entities: " + reason, error.Message);
    }

    [Fact]
    public async Task Escaped_markdown_is_accepted_and_becomes_entities()
    {
        _telegram.AddChat(AlicePrivate);

        var sent = await _bot.SendMessage(AlicePrivate.Id, "Version 1\\.5: *bold* _it_ `x.y` [docs](https://example.com/a\\)b)", ParseMode.MarkdownV2, cancellationToken: Timeout());

        Assert.Equal("Version 1.5: bold it x.y docs", sent.Text);
        Assert.Equal([MessageEntityType.Bold, MessageEntityType.Italic, MessageEntityType.Code, MessageEntityType.TextLink], sent.Entities!.Select(e => e.Type));
        Assert.Equal("https://example.com/a)b", sent.Entities![3].Url);
    }

    [Fact]
    public async Task A_429_carries_retry_after_which_the_library_exposes()
    {
        _telegram.AddChat(AlicePrivate);
        _telegram.FailNext("sendMessage", 429, retryAfter: 7);

        var error = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.SendMessage(AlicePrivate.Id, "hi", cancellationToken: Timeout()));

        Assert.Equal(429, error.ErrorCode);
        Assert.Equal("Too Many Requests: retry after 7", error.Message);
        Assert.Equal(7, error.Parameters?.RetryAfter);
        // Only the next call fails.
        await _bot.SendMessage(AlicePrivate.Id, "hi", cancellationToken: Timeout());
        Assert.Equal([429, 200], _telegram.CallsTo("sendMessage").Select(c => c.Status));
    }

    [Fact]
    public async Task The_library_retries_a_429_itself_when_retry_after_is_under_its_threshold()
    {
        _telegram.AddChat(AlicePrivate);
        _telegram.FailNext("sendMessage", 429, retryAfter: 1);

        await Client(retryThreshold: 60).SendMessage(AlicePrivate.Id, "patient", cancellationToken: Timeout());

        var calls = _telegram.CallsTo("sendMessage");
        Assert.Equal([429, 200], calls.Select(c => c.Status));
        Assert.True(calls[1].At - calls[0].At >= TimeSpan.FromSeconds(0.9));
    }

    [Fact]
    public async Task Allowed_updates_are_remembered_and_filter_updates_created_after_them()
    {
        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "before the filter");

        var updates = await _bot.GetUpdates(allowedUpdates: [UpdateType.CallbackQuery], cancellationToken: Timeout());

        // Created before the call: still delivered, as the API warns.
        Assert.Equal("before the filter", Assert.Single(updates).Message!.Text);
        Assert.Equal(["callback_query"], _telegram.AllowedUpdates());
        var offset = updates[0].Id + 1;

        var sent = await _bot.SendMessage(AlicePrivate.Id, "pick one", cancellationToken: Timeout());
        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "filtered out");
        _telegram.EnqueueCallbackQuery(AlicePrivate.Id, sent.Id, TelegramUser.Alice, "choice-1");

        // No allowed_updates in this call: the previous setting holds.
        var next = await _bot.GetUpdates(offset: offset, cancellationToken: Timeout());
        var callback = Assert.Single(next).CallbackQuery!;
        Assert.Equal("choice-1", callback.Data);
        Assert.Equal(sent.Id, callback.Message!.Id);
        Assert.Equal(["callback_query"], _telegram.AllowedUpdates());

        await _bot.AnswerCallbackQuery(callback.Id, "noted", cancellationToken: Timeout());
        Assert.Equal(callback.Id, (string?)Assert.Single(_telegram.AnsweredCallbacks)["callback_query_id"]);

        // An empty list restores the default: every type but chat_member and the reactions.
        await _bot.GetUpdates(offset: next[0].Id + 1, allowedUpdates: [], cancellationToken: Timeout());
        Assert.Null(_telegram.AllowedUpdates());
        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "welcome back");
        Assert.Null(_telegram.EnqueueUpdate("message_reaction", new JsonObject { ["chat"] = AlicePrivate.ToJson() }));
        Assert.Equal("welcome back", Assert.Single(await _bot.GetUpdates(cancellationToken: Timeout())).Message!.Text);
    }

    [Fact]
    public async Task Group_privacy_delivers_only_what_is_meant_for_the_bot()
    {
        _telegram.GroupPrivacy = true;
        var group = TelegramChat.Group();
        var mine = await SendIntoAsync(group, "I am the bot");

        _telegram.EnqueueMessage(group, TelegramUser.Alice, "just chatting");
        _telegram.EnqueueMessage(group, TelegramUser.Alice, "/help");
        _telegram.EnqueueMessage(group, TelegramUser.Alice, "/help@some_other_bot");
        _telegram.EnqueueMessage(group, TelegramUser.Alice, "a reply to you", replyTo: mine);
        _telegram.EnqueueMessage(group, new TelegramUser(999, "Robot", "robot_bot", IsBot: true), "/help");
        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "private is always delivered");

        var texts = (await _bot.GetUpdates(cancellationToken: Timeout())).Select(u => u.Message!.Text);

        Assert.Equal(["/help", "a reply to you", "private is always delivered"], texts);
        Assert.False((await _bot.GetMe(Timeout())).CanReadAllGroupMessages);
    }

    private async Task<int> SendIntoAsync(TelegramChat chat, string text)
    {
        _telegram.AddChat(chat);
        return (await _bot.SendMessage(chat.Id, text, cancellationToken: Timeout())).Id;
    }

    [Fact]
    public async Task ChatAction_commands_and_edits_answer_as_documented()
    {
        _telegram.AddChat(AlicePrivate);

        Assert.True(await SucceedsAsync(() => _bot.SendChatAction(AlicePrivate.Id, ChatAction.Typing, cancellationToken: Timeout())));
        Assert.Equal("typing", (string?)_telegram.CallsTo("sendChatAction").Single().Body["action"]);

        await _bot.SetMyCommands([new BotCommand("ask", "Ask the agent"), new BotCommand("reset", "Start a new session")], cancellationToken: Timeout());
        Assert.Equal(["ask", "reset"], _telegram.Commands()!.Select(c => (string?)c!["command"]));
        Assert.Equal(["ask", "reset"], (await _bot.GetMyCommands(cancellationToken: Timeout())).Select(c => c.Command));
        var invalid = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.SetMyCommands([new BotCommand("Bad Command", "no")], cancellationToken: Timeout()));
        Assert.Equal("Bad Request: BOT_COMMAND_INVALID", invalid.Message);

        var sent = await _bot.SendMessage(AlicePrivate.Id, "thinking…", cancellationToken: Timeout());
        var edited = await _bot.EditMessageText(AlicePrivate.Id, sent.Id, "done", cancellationToken: Timeout());
        Assert.Equal("done", edited.Text);
        Assert.NotNull(edited.EditDate);
        Assert.Equal("done", (string?)_telegram.MessageIn(AlicePrivate.Id, sent.Id)!["text"]);
        var same = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.EditMessageText(AlicePrivate.Id, sent.Id, "done", cancellationToken: Timeout()));
        Assert.StartsWith("Bad Request: message is not modified", same.Message, StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.EditMessageText(AlicePrivate.Id, 999, "x", cancellationToken: Timeout()));
        Assert.Equal("Bad Request: message to edit not found", missing.Message);
    }

    private static async Task<bool> SucceedsAsync(Func<Task> call)
    {
        await call();
        return true;
    }

    [Fact]
    public async Task Query_string_and_form_bodies_are_read_like_json()
    {
        _telegram.AddChat(AlicePrivate);
        var question = (int)_telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "q")["message_id"]!;
        using var http = new HttpClient { BaseAddress = new Uri(_telegram.BaseUrl) };
        var prefix = $"/bot{TelegramDouble.Token}";

        var viaGet = await http.GetFromJsonAsync<JsonObject>($"{prefix}/sendMessage?chat_id={AlicePrivate.Id}&text=from%20a%20query&reply_to_message_id={question}", Timeout());
        Assert.Equal("from a query", (string?)viaGet!["result"]!["text"]);
        Assert.Equal(question, (int)viaGet["result"]!["reply_to_message"]!["message_id"]!);

        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["chat_id"] = AlicePrivate.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["text"] = "from a form",
            ["reply_parameters"] = $"{{\"message_id\":{question}}}",
        });
        using var viaForm = await http.PostAsync($"{prefix}/sendMessage", form, Timeout());
        var body = await viaForm.Content.ReadFromJsonAsync<JsonObject>(Timeout());
        Assert.Equal(question, (int)body!["result"]!["reply_to_message"]!["message_id"]!);

        using var multipart = new MultipartFormDataContent { { new StringContent(AlicePrivate.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), "chat_id" }, { new StringContent("from multipart"), "text" } };
        using var viaMultipart = await http.PostAsync($"{prefix}/sendMessage", multipart, Timeout());
        Assert.Equal(HttpStatusCode.OK, viaMultipart.StatusCode);

        // getme: method names are case-insensitive; an unknown one is 404 in the usual envelope.
        Assert.True((bool)(await http.GetFromJsonAsync<JsonObject>($"{prefix}/getme", Timeout()))!["ok"]!);
        using var unknown = await http.GetAsync($"{prefix}/noSuchMethod", Timeout());
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("Not Found", (string?)(await unknown.Content.ReadFromJsonAsync<JsonObject>(Timeout()))!["description"]);
        Assert.Equal(["from a query", "from a form", "from multipart"], _telegram.SentTo(AlicePrivate.Id).Select(m => m.Text));
    }

    [Fact]
    public async Task A_webhook_gets_updates_with_its_secret_and_blocks_getUpdates()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Timeout());
        await _bot.SetWebhook(receiver.Url, allowedUpdates: [UpdateType.Message], secretToken: "s3cret-Token_1", cancellationToken: Timeout());
        Assert.Equal((receiver.Url, "s3cret-Token_1"), _telegram.Webhook());
        Assert.Equal(receiver.Url, (await _bot.GetWebhookInfo(Timeout())).Url);

        var conflict = await Assert.ThrowsAsync<ApiRequestException>(() => _bot.GetUpdates(cancellationToken: Timeout()));
        Assert.Equal(409, conflict.ErrorCode);
        Assert.StartsWith("Conflict: can't use getUpdates method while webhook is active", conflict.Message, StringComparison.Ordinal);

        _telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "via webhook");
        Assert.Equal(1, await _telegram.DeliverPendingToWebhookAsync(cancellationToken: Timeout()));

        var (secret, json) = Assert.Single(receiver.Received);
        Assert.Equal("s3cret-Token_1", secret);
        var update = JsonSerializer.Deserialize<Update>(json, JsonBotAPI.Options)!;
        Assert.Equal("via webhook", update.Message!.Text);
        Assert.Equal(0, _telegram.PendingUpdates());

        await _bot.DeleteWebhook(cancellationToken: Timeout());
        Assert.Null(_telegram.Webhook());
        Assert.Empty(await _bot.GetUpdates(cancellationToken: Timeout()));
    }

    /// <summary>A bot's webhook endpoint: records each POST with its secret-token header.</summary>
    private sealed class WebhookReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<(string? Secret, string Json)> _received = new();

        private WebhookReceiver(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";
        public IReadOnlyList<(string? Secret, string Json)> Received => [.. _received];

        public static async Task<WebhookReceiver> StartAsync(CancellationToken cancellationToken)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var receiver = new WebhookReceiver(app);
            app.MapPost("/telegram/hook", async (HttpContext context) =>
            {
                using var reader = new StreamReader(context.Request.Body);
                receiver._received.Enqueue((context.Request.Headers["X-Telegram-Bot-Api-Secret-Token"].FirstOrDefault(), await reader.ReadToEndAsync(context.RequestAborted)));
                return Results.Ok();
            });
            await app.StartAsync(cancellationToken);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            receiver.Url = address.TrimEnd('/') + "/telegram/hook";
            return receiver;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
