namespace Loop.WhatsApp;

using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

/// <summary>WhatsApp's Cloud API refused a request in a way retrying will not fix.</summary>
public sealed class WhatsAppApiException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}

/// <summary>
/// The parts of WhatsApp's Cloud API (Meta's Graph API) Loop uses: the number's profile, sending text,
/// and marking a message read with the typing indicator. Throttling (429, or the error codes Meta
/// uses for it) and server errors are retried with backoff, so no reply is dropped.
/// </summary>
public sealed class WhatsAppCloudApi(Uri apiUrl, string phoneNumberId, string accessToken, TimeProvider time, ILogger logger) : IDisposable
{
    private const int MaxAttempts = 6;

    // 4: app-level throttling, 80007 / 130429: rate limits, 131056: too many messages to one number.
    private static readonly HashSet<int> ThrottleCodes = [4, 80007, 130429, 131056];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>"+1 555-000-1111 (Loop)": the number and its verified name; a refused token throws.</summary>
    public async Task<string> DescribeAsync(CancellationToken cancellationToken)
    {
        var number = await SendAsync(HttpMethod.Get, $"{phoneNumberId}?fields=display_phone_number,verified_name", null, cancellationToken);
        return $"{(string?)number?["display_phone_number"]} ({(string?)number?["verified_name"]})";
    }

    /// <summary>Sends a text message, as a reply to <paramref name="replyTo"/> when given; returns its id.</summary>
    public async Task<string> SendTextAsync(string to, string text, string? replyTo, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["recipient_type"] = "individual",
            ["to"] = to,
            ["type"] = "text",
            ["text"] = new JsonObject { ["preview_url"] = false, ["body"] = text },
        };
        if (replyTo is not null)
        {
            body["context"] = new JsonObject { ["message_id"] = replyTo };
        }
        var sent = await SendAsync(HttpMethod.Post, $"{phoneNumberId}/messages", body, cancellationToken);
        return (string?)sent?["messages"]?[0]?["id"] ?? "";
    }

    /// <summary>Marks a message read (blue ticks) and shows "typing…" to its sender until the reply, for up to 25 s.</summary>
    public Task MarkReadAsync(string messageId, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"{phoneNumberId}/messages", new JsonObject
        {
            ["messaging_product"] = "whatsapp",
            ["status"] = "read",
            ["message_id"] = messageId,
            ["typing_indicator"] = new JsonObject { ["type"] = "text" },
        }, cancellationToken);

    private async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, new Uri(apiUrl.AbsoluteUri.TrimEnd('/') + "/" + path));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
            if (body is not null)
            {
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            }
            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, cancellationToken);
            }
            catch (HttpRequestException error) when (attempt < MaxAttempts)
            {
                await BackOffAsync(attempt, null, error.Message, cancellationToken);
                continue;
            }
            using (response)
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken);
                var json = text.Length == 0 ? null : JsonNode.Parse(text);
                if (response.IsSuccessStatusCode)
                {
                    return json;
                }
                var error = json?["error"];
                var code = (int?)error?["code"] ?? 0;
                var message = (string?)error?["message"] ?? response.ReasonPhrase ?? "no reason given";
                var throttled = response.StatusCode == HttpStatusCode.TooManyRequests || ThrottleCodes.Contains(code);
                if ((throttled || (int)response.StatusCode >= 500) && attempt < MaxAttempts)
                {
                    await BackOffAsync(attempt, response.Headers.RetryAfter?.Delta, message, cancellationToken);
                    continue;
                }
                throw new WhatsAppApiException(response.StatusCode, $"WhatsApp refused {method} {path.Split('?')[0]} ({(int)response.StatusCode}, code {code}): {message}");
            }
        }
    }

    private async Task BackOffAsync(int attempt, TimeSpan? retryAfter, string why, CancellationToken cancellationToken)
    {
        var delay = retryAfter ?? TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, attempt - 1)));
        logger.LogWarning("WhatsApp asked to slow down or failed ({Why}); trying again in {Delay}", why, delay);
        await Task.Delay(delay, time, cancellationToken);
    }

    public void Dispose() => _http.Dispose();
}
