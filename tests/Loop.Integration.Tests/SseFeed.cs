namespace Loop.Integration.Tests;

using System.Net;
using System.Text.Json.Nodes;
using Loop.Testing;

internal sealed record SseEvent(string Id, string Kind, JsonObject Data);

/// <summary>The live feed read as a browser's EventSource does.</summary>
internal sealed class SseFeed(HttpClient client, HttpResponseMessage response, StreamReader reader) : IDisposable
{
    public static async Task<SseFeed> OpenAsync(LoopDaemon loop, string? lastEventId)
    {
        var client = new HttpClient { BaseAddress = new Uri(loop.ApiUrl), Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = loop.Http.DefaultRequestHeaders.Authorization;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal(": connected", await reader.ReadLineAsync());
        return new SseFeed(client, response, reader);
    }

    public async Task<SseEvent> NextAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? id = null, kind = null;
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = line[4..];
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                kind = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && id is not null && kind is not null)
            {
                return new SseEvent(id, kind, JsonNode.Parse(line[6..])!.AsObject());
            }
        }
        throw new InvalidOperationException("the event feed ended");
    }

    public async Task<SseEvent> WaitForAsync(string kind)
    {
        while (true)
        {
            var next = await NextAsync();
            if (next.Kind == kind)
            {
                return next;
            }
        }
    }

    public void Dispose()
    {
        reader.Dispose();
        response.Dispose();
        client.Dispose();
    }
}
