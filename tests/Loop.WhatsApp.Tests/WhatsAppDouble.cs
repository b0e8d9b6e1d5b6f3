namespace Loop.WhatsApp.Tests;

using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Loop.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>A message the business number sent through the send API.</summary>
public sealed record SentMessage(string To, string Text, string? ReplyTo);

/// <summary>
/// WhatsApp's Cloud API as Loop meets it, built from Meta's documented payloads: the Graph API's
/// phone number (GET /{phone-number-id}) and messages endpoint (text messages with an optional
/// context, and "read" with a typing indicator), its error envelope, and the webhook calls Meta
/// makes: the verification handshake and message notifications signed with the app secret
/// (X-Hub-Signature-256).
/// </summary>
public sealed class WhatsAppDouble : IAsyncDisposable
{
    public const string PhoneNumberId = "106540352242922";
    public const string AccessToken = "EAAG-test-access-token";
    public const string AppSecret = "test-app-secret";
    public const string VerifyToken = "test-verify-token";
    public const string DisplayNumber = "+1 555-000-1111";

    private readonly WebApplication _app;
    private readonly object _gate = new();
    private readonly List<SentMessage> _sent = [];
    private readonly List<string> _read = [];
    private readonly Queue<(int Status, int Code, string Message)> _failures = new();
    private readonly Stalls _stalls = new();
    private static readonly HttpClient Http = new();
    private long _ids;

    private WhatsAppDouble(WebApplication app) => _app = app;

    public static async Task<WhatsAppDouble> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var whatsapp = new WhatsAppDouble(app);
        app.Map("/v21.0/{**path}", whatsapp.HandleAsync);
        await app.StartAsync();
        whatsapp.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return whatsapp;
    }

    public string BaseUrl { get; private set; } = "";

    /// <summary>What <c>whatsapp_api_url</c> points at.</summary>
    public string ApiUrl => BaseUrl + "/v21.0";

    public IReadOnlyList<SentMessage> Sent
    {
        get { lock (_gate) { return [.. _sent]; } }
    }

    /// <summary>Messages marked read (with the typing indicator).</summary>
    public IReadOnlyList<string> Read
    {
        get { lock (_gate) { return [.. _read]; } }
    }

    /// <summary>The next send is refused with this HTTP status and Graph error code (429 / 130429: throttled).</summary>
    public void FailNext(int status, int code, string message)
    {
        lock (_gate)
        {
            _failures.Enqueue((status, code, message));
        }
    }

    /// <summary>The next send is held unanswered, as a network that stopped delivering would, until its
    /// caller gives up; nothing is sent. The task completes when the send has arrived.</summary>
    public Task StallNextSend() => _stalls.Next(_ => true);

    public async Task<IReadOnlyList<SentMessage>> WaitForSentAsync(int count, TimeSpan? timeout = null)
    {
        try
        {
            await Eventually.WaitAsync(() => Sent.Count >= count, "messages sent", timeout ?? TimeSpan.FromSeconds(120));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Sent.Count} of {count} message(s) sent: {string.Join(" | ", Sent)}");
        }
        return Sent;
    }

    /// <summary>A user's text message as Meta's webhook notifies it: the envelope, the contact and the message.</summary>
    public static JsonObject TextMessage(string from, string text, string? id = null, string name = "Alice") => new()
    {
        ["object"] = "whatsapp_business_account",
        ["entry"] = new JsonArray(new JsonObject
        {
            ["id"] = "102290129340398",
            ["changes"] = new JsonArray(new JsonObject
            {
                ["field"] = "messages",
                ["value"] = new JsonObject
                {
                    ["messaging_product"] = "whatsapp",
                    ["metadata"] = new JsonObject { ["display_phone_number"] = "15550001111", ["phone_number_id"] = PhoneNumberId },
                    ["contacts"] = new JsonArray(new JsonObject { ["profile"] = new JsonObject { ["name"] = name }, ["wa_id"] = from }),
                    ["messages"] = new JsonArray(new JsonObject
                    {
                        ["from"] = from,
                        ["id"] = id ?? $"wamid.{Guid.NewGuid():N}",
                        ["timestamp"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
                        ["type"] = "text",
                        ["text"] = new JsonObject { ["body"] = text },
                    }),
                },
            }),
        }),
    };

    /// <summary>Posts a notification to a webhook as Meta does: JSON, signed with <paramref name="secret"/>.</summary>
    public static async Task<HttpResponseMessage> NotifyAsync(string webhook, JsonObject notification, string secret = AppSecret)
    {
        var body = Encoding.UTF8.GetBytes(notification.ToJsonString());
        using var request = new HttpRequestMessage(HttpMethod.Post, webhook) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-Hub-Signature-256", "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body)));
        return await Http.SendAsync(request);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = (string)context.Request.RouteValues["path"]!;
        if (context.Request.Headers.Authorization.ToString() != "Bearer " + AccessToken)
        {
            await ErrorAsync(context, 401, 190, "Invalid OAuth access token - Cannot parse access token");
            return;
        }
        if (HttpMethods.IsGet(context.Request.Method) && path == PhoneNumberId)
        {
            await context.Response.WriteAsJsonAsync(new JsonObject { ["verified_name"] = "Loop Test", ["display_phone_number"] = DisplayNumber, ["id"] = PhoneNumberId });
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method) || path != PhoneNumberId + "/messages")
        {
            await ErrorAsync(context, 400, 100, $"Unsupported request - method type: {context.Request.Method.ToLowerInvariant()}");
            return;
        }
        var body = (await JsonNode.ParseAsync(context.Request.Body))!;
        if ((string?)body["messaging_product"] != "whatsapp")
        {
            await ErrorAsync(context, 400, 100, "The parameter messaging_product is required.");
            return;
        }
        if ((string?)body["status"] == "read")
        {
            lock (_gate)
            {
                _read.Add((string)body["message_id"]!);
            }
            await context.Response.WriteAsJsonAsync(new JsonObject { ["success"] = true });
            return;
        }
        (int Status, int Code, string Message)? failure = null;
        lock (_gate)
        {
            if (_failures.Count > 0)
            {
                failure = _failures.Dequeue();
            }
        }
        if (failure is null && await _stalls.HoldAsync("send", context.RequestAborted))
        {
            return;
        }
        if (failure is { } f)
        {
            await ErrorAsync(context, f.Status, f.Code, f.Message);
            return;
        }
        var text = (string?)body["text"]?["body"] ?? "";
        if ((string?)body["type"] != "text" || text.Length == 0 || text.Length > 4096)
        {
            await ErrorAsync(context, 400, 100, "Invalid parameter: text['body'] must be 1 to 4096 characters long");
            return;
        }
        var to = (string)body["to"]!;
        var id = $"wamid.sent{Interlocked.Increment(ref _ids)}";
        lock (_gate)
        {
            _sent.Add(new SentMessage(to, text, (string?)body["context"]?["message_id"]));
        }
        await context.Response.WriteAsJsonAsync(new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["contacts"] = new JsonArray(new JsonObject { ["input"] = to, ["wa_id"] = to }),
            ["messages"] = new JsonArray(new JsonObject { ["id"] = id }),
        });
    }

    private static Task ErrorAsync(HttpContext context, int status, int code, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = "OAuthException", ["code"] = code, ["fbtrace_id"] = "AbCdEf" },
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
