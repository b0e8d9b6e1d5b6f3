namespace Loop.WhatsApp;

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Loop.Domain.Connectors;
using Loop.Domain.Runs;
using Loop.Runtime;
using Microsoft.Extensions.Logging;

/// <summary>
/// A WhatsApp number through the official Cloud API. Meta calls the webhook (<c>/hooks/{connector id}</c>
/// on any node) with each message, signed with the app secret; a message from a number on the
/// whitelist is stored as a message of that person's channel before the webhook answers 200, so Meta
/// delivers it again if anything failed. Replies go out through the send API from the node that ran
/// the agent: marked read with "typing…" while it works, then the answer, as a reply to the message,
/// in parts of at most 4,096 characters.
/// </summary>
public sealed class WhatsAppChatAdapter : IChatAdapter, IChatWebhook
{
    public const int TextLimit = 4096;
    private static readonly TimeSpan RefuseAgainAfter = TimeSpan.FromDays(1);

    private readonly WhatsAppCloudApi _api;
    private readonly ChannelService _channels;
    private readonly ILoopEvents _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _phoneNumberId;
    private readonly byte[] _appSecret;
    private readonly string _verifyToken;
    private ConnectorRunFeed? _runs;
    private volatile string _status = "not connected";

    public WhatsAppChatAdapter(Connector connector, IReadOnlyDictionary<string, string> secrets, ChannelService channels, ILoopEvents events,
        TimeProvider time, ILoggerFactory loggers)
    {
        Connector = connector;
        _channels = channels;
        _events = events;
        _time = time;
        _logger = loggers.CreateLogger<WhatsAppChatAdapter>();
        _phoneNumberId = connector.Settings["phone_number_id"];
        _appSecret = Encoding.UTF8.GetBytes(secrets["app_secret"]);
        _verifyToken = secrets["verify_token"];
        _api = new WhatsAppCloudApi(new Uri(connector.Settings.GetValueOrDefault("api_url") ?? "https://graph.facebook.com/v21.0"),
            _phoneNumberId, secrets["access_token"], time, _logger);
    }

    public Connector Connector { get; }

    public string Status => _status;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _runs = ConnectorRunFeed.Start(_events, _channels, Connector, OnRunAsync, _time, _logger);
        return Task.CompletedTask;
    }

    /// <summary>The webhook needs no connection; the node holding it checks the credentials and reports.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        _status = "connecting";
        try
        {
            _status = $"connected as {await _api.DescribeAsync(cancellationToken)}";
        }
        catch (WhatsAppApiException refused)
        {
            _status = $"failed: {refused.Message}";
        }
        catch (HttpRequestException unreachable)
        {
            _status = $"reconnecting: the Cloud API is not reachable ({unreachable.Message})";
        }
    }

    public Task DisconnectAsync(CancellationToken cancellationToken)
    {
        _status = "not connected";
        return Task.CompletedTask;
    }

    public Task ChannelRegisteredAsync(Domain.Channels.Channel channel, CancellationToken cancellationToken) => Task.CompletedTask;

    // ---- inbound: the webhook ----

    public async Task<WebhookAnswer> ReceiveAsync(WebhookCall call, CancellationToken cancellationToken)
    {
        if (call.Method == "GET")
        {
            // Meta's subscription handshake: echo the challenge when the verify token matches.
            return call.Query.GetValueOrDefault("hub.mode") == "subscribe" && call.Query.GetValueOrDefault("hub.verify_token") is { } token
                && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes(_verifyToken))
                ? new WebhookAnswer(200, call.Query.GetValueOrDefault("hub.challenge") ?? "")
                : new WebhookAnswer(403, "the verify token does not match this connector's");
        }
        if (!SignedBy(call))
        {
            _logger.LogWarning("Refused a webhook call for connector {Connector}: its X-Hub-Signature-256 does not match the app secret", Connector.Id);
            return new WebhookAnswer(401, "the X-Hub-Signature-256 signature does not match the app secret");
        }
        JsonNode? update;
        try
        {
            update = JsonNode.Parse(call.Body);
        }
        catch (JsonException)
        {
            return new WebhookAnswer(400, "the body is not JSON");
        }
        foreach (var value in (update?["entry"]?.AsArray() ?? []).SelectMany(e => e?["changes"]?.AsArray() ?? []).Select(c => c?["value"]))
        {
            if ((string?)value?["metadata"]?["phone_number_id"] != _phoneNumberId)
            {
                continue;
            }
            var names = (value?["contacts"]?.AsArray() ?? []).ToDictionary(c => (string?)c?["wa_id"] ?? "", c => (string?)c?["profile"]?["name"], StringComparer.Ordinal);
            foreach (var message in value?["messages"]?.AsArray() ?? [])
            {
                await TakeAsync(message!, names, cancellationToken);
            }
        }
        return new WebhookAnswer(200, "stored");
    }

    private bool SignedBy(WebhookCall call)
    {
        if (call.Headers.GetValueOrDefault("x-hub-signature-256") is not { } header || !header.StartsWith("sha256=", StringComparison.Ordinal))
        {
            return false;
        }
        byte[] given;
        try
        {
            given = Convert.FromHexString(header["sha256=".Length..]);
        }
        catch (FormatException)
        {
            return false;
        }
        return CryptographicOperations.FixedTimeEquals(given, HMACSHA256.HashData(_appSecret, call.Body));
    }

    private async Task TakeAsync(JsonNode message, IReadOnlyDictionary<string, string?> names, CancellationToken cancellationToken)
    {
        var from = (string?)message["from"] ?? "";
        var id = (string?)message["id"];
        var name = names.GetValueOrDefault(from) ?? "+" + from;
        if (!Allows(from))
        {
            await RefuseAsync(from, id, cancellationToken);
            return;
        }
        var text = TextOf(message);
        var (channel, stored) = await _channels.PostChatMessageAsync(new ChatInbound(Connector.Id, from, name, name, text, id, Connector.Kind), cancellationToken);
        _logger.LogInformation("WhatsApp message {MessageId} from {From} stored as message {StoredId} of channel {ChannelId}", id, from, stored.Id, channel.Id);
    }

    /// <summary>What the agent reads: the text, or what was sent when it is not text (nothing is dropped silently).</summary>
    public static string TextOf(JsonNode message)
    {
        var type = (string?)message["type"] ?? "unknown";
        return type switch
        {
            "text" => (string?)message["text"]?["body"] ?? "",
            "button" => (string?)message["button"]?["text"] ?? "",
            "interactive" => (string?)message["interactive"]?["button_reply"]?["title"] ?? (string?)message["interactive"]?["list_reply"]?["title"] ?? "[an interactive reply]",
            "image" or "video" or "document" or "audio" or "sticker" =>
                $"[{type}{((string?)message[type]?["filename"] is { } file ? " " + file : "")} sent; Loop does not pass files on yet]"
                + ((string?)message[type]?["caption"] is { } caption ? "\n" + caption : ""),
            "location" => $"[location {(double?)message["location"]?["latitude"]}, {(double?)message["location"]?["longitude"]}]",
            _ => $"[a {type} message, which Loop does not read yet]",
        };
    }

    private bool Allows(string from) => Connector.Allowed.Contains("*") || Connector.Allowed.Contains(from);

    /// <summary>A stranger hears once a day why nothing happens, and what to ask the owner; no agent runs.</summary>
    private async Task RefuseAsync(string from, string? messageId, CancellationToken cancellationToken)
    {
        if (!await _channels.TellStrangerAsync(Connector.Id, from, _time.GetUtcNow(), RefuseAgainAfter, cancellationToken))
        {
            return;
        }
        _logger.LogWarning("WhatsApp message from +{From}, who is not on connector {Connector}'s whitelist: not run", from, Connector.Id);
        try
        {
            await _api.SendTextAsync(from, $"Sorry, this assistant only answers people its owner has allowed. Ask them to add +{from} to the allowed numbers.", messageId, cancellationToken);
        }
        catch (Exception error) when (error is WhatsAppApiException or HttpRequestException)
        {
            _logger.LogWarning("Could not tell +{From} why their message is not answered: {Error}", from, error.Message);
        }
    }

    // ---- outbound: run events ----

    private async Task OnRunAsync(ChatRunEvent run, CancellationToken cancellationToken)
    {
        if (run.Kind == "run.queued")
        {
            return;
        }
        if (!run.Ended)
        {
            if ((await _channels.GetRunAnswerAsync(run.Run.Id, run.Text, cancellationToken)).Trigger is { } read)
            {
                await _api.MarkReadAsync(read, cancellationToken);
            }
            return;
        }
        await _channels.PostReplyOnceAsync(run.Run.Id, async ct =>
        {
            var (reply, trigger) = await _channels.GetRunAnswerAsync(run.Run.Id, run.Text, ct);
            var parts = MessageSplitter.Split(reply, TextLimit);
            for (var i = 0; i < parts.Count; i++)
            {
                await _api.SendTextAsync(run.Chat, parts[i], i == 0 ? trigger : null, ct);
            }
            _logger.LogInformation("Sent the reply of run {RunId} to +{To} in {Parts} part(s)", run.Run.Id, run.Chat, parts.Count);
        }, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_runs is not null)
        {
            await _runs.DisposeAsync();
        }
        _api.Dispose();
    }
}
