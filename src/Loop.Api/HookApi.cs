namespace Loop.Api;

using Loop.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// <c>/hooks/{connector id}</c>: where a platform calls a connector back (WhatsApp's webhook). Outside
/// /api, so it needs no login: the connector checks each call itself (a verify token, a signature
/// made with the app secret). Any node answers, for every connector at work on it.
/// </summary>
public static class HookApi
{
    /// <summary>Platforms send small JSON documents; more is refused before it is read.</summary>
    private const int MaxBody = 1024 * 1024;

    public static void Map(IEndpointRouteBuilder app)
    {
        var chats = app.ServiceProvider.GetRequiredService<ChatConnections>();
        app.MapMethods("/hooks/{id}", ["GET", "POST"], async (string id, HttpRequest request, CancellationToken ct) =>
        {
            if (chats.Adapter(id) is not IChatWebhook hook)
            {
                throw new LoopNotFoundException($"no connector {id} takes calls here (it may be disabled, or still starting)");
            }
            // Kestrel then refuses a longer body with 413, whether its length was announced or not.
            if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = MaxBody;
            }
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body, ct);
            var call = new WebhookCall(request.Method,
                request.Query.ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal),
                request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString(), StringComparer.Ordinal),
                body.ToArray());
            var answer = await hook.ReceiveAsync(call, ct);
            return Results.Text(answer.Text, "text/plain", statusCode: answer.Status);
        })
            .ExcludeFromDescription();
    }
}
