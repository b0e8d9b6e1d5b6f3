namespace Loop.Telegram.Tests;

using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Loop.Domain.Channels;

/// <summary>
/// The Telegram connector in webhook mode, on a real node whose API takes Telegram's calls at
/// /hooks/telegram, against the Bot API double pushing updates the way Telegram does.
/// </summary>
public sealed class WebhookTests
{
    private static readonly TelegramChat AlicePrivate = TelegramChat.Private(TelegramUser.Alice);

    private static string Id(long chat) => chat.ToString(CultureInfo.InvariantCulture);

    private static async Task<TelegramHarness> StartAsync(TelegramDouble telegram)
    {
        var loop = await TelegramHarness.StartAsync(telegram, webhook: true);
        await Eventually.WaitAsync(() => loop.Adapter.Status == $"connected as @{TelegramDouble.BotUsername} (webhook)", "the webhook set");
        return loop;
    }

    [Fact]
    public async Task Telegram_is_told_where_to_post_and_a_posted_message_is_answered_without_any_polling()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartAsync(telegram);

        var (url, secret) = telegram.Webhook()!.Value;
        Assert.EndsWith("/hooks/telegram", url, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(secret));
        Assert.Equal(["message", "callback_query"], telegram.AllowedUpdates());
        await Eventually.WaitAsync(() => telegram.Commands() is not null, "the commands registered");

        var trigger = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "hello over the webhook");
        Assert.Equal(1, await telegram.DeliverPendingToWebhookAsync());
        await Eventually.WaitAsync(() => telegram.SentTo(AlicePrivate.Id).Count > 0, "the agent's reply");

        var reply = Assert.Single(telegram.SentTo(AlicePrivate.Id));
        Assert.Equal("echo: Alice Liddell: hello over the webhook", reply.Text);
        Assert.Equal((int)trigger["message_id"]!, (int?)reply.Message["reply_to_message"]?["message_id"]);
        Assert.Empty(telegram.CallsTo("getUpdates"));
        Assert.Equal(0, telegram.PendingUpdates());
    }

    [Fact]
    public async Task A_call_without_the_secret_is_refused_and_stores_nothing()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartAsync(telegram);
        var (url, _) = telegram.Webhook()!.Value;
        var forged = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "forged");

        Assert.Equal(401, await telegram.PostToWebhookAsync(forged, url, secretToken: "guess"));
        using (var http = new HttpClient())
        using (var bare = await http.PostAsync(url, new StringContent(forged.ToJsonString(), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, bare.StatusCode);
        }

        Assert.Empty(await loop.StoredAsync(Id(AlicePrivate.Id)));
        Assert.Empty(loop.Sandbox.Prompts);
    }

    [Fact]
    public async Task An_update_the_store_cannot_take_is_refused_so_Telegram_sends_it_again_and_it_is_answered_once()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartAsync(telegram);

        loop.Store.Refusing = true;
        telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "kept for later");
        Assert.Equal(0, await telegram.DeliverPendingToWebhookAsync());
        Assert.Equal(1, telegram.PendingUpdates());
        // Telegram reports the failed delivery; the connector's status says so until it gets through.
        await Eventually.WaitAsync(() => loop.Adapter.Status.StartsWith("reconnecting: Telegram could not deliver updates", StringComparison.Ordinal),
            "the delivery failure in the status");

        loop.Store.Refusing = false;
        Assert.Equal(1, await telegram.DeliverPendingToWebhookAsync());
        await Eventually.WaitAsync(() => telegram.SentTo(AlicePrivate.Id).Count > 0, "the agent's reply");
        await Eventually.WaitAsync(() => loop.Adapter.Status == $"connected as @{TelegramDouble.BotUsername} (webhook)", "connected again");

        // Telegram delivers an update again when its answer was lost: the message is stored once.
        var again = telegram.EnqueueMessage(AlicePrivate, TelegramUser.Alice, "sent twice");
        Assert.Equal(200, await telegram.PostToWebhookAsync((JsonObject)again.DeepClone()));
        Assert.Equal(1, await telegram.DeliverPendingToWebhookAsync());
        await Eventually.WaitAsync(() => telegram.SentTo(AlicePrivate.Id).Count >= 2, "the second reply");

        var users = (await loop.StoredAsync(Id(AlicePrivate.Id))).Where(m => m.Role == MessageRole.User).Select(m => m.Content).ToList();
        Assert.Equal(["kept for later", "sent twice"], users);
        Assert.Equal(2, loop.Sandbox.Prompts.Count);
    }

    [Fact]
    public async Task A_webhook_removed_elsewhere_is_set_again()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        await using var loop = await StartAsync(telegram);
        var (url, secret) = telegram.Webhook()!.Value;

        using (var http = new HttpClient())
        using (var removed = await http.PostAsync($"{telegram.BaseUrl}/bot{TelegramDouble.Token}/deleteWebhook", null))
        {
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        }
        Assert.Null(telegram.Webhook());

        await Eventually.WaitAsync(() => telegram.Webhook() is not null, "the webhook set again");
        Assert.Equal((url, secret), telegram.Webhook()!.Value);
    }
}
