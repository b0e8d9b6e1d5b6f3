namespace Loop.Integration.Tests;

using System.Net;
using System.Text.Json.Nodes;
using Loop.Testing;

internal sealed record SseEvent(string Id, string Kind, JsonObject Data);

/// <summary>The live feed read as a browser's EventSource does.</summary>
internal sealed class SseFeed(HttpClient client, HttpResponseMessage response, StreamReader reader) : IDisposable
{
    /// <param name="receiveBuffer">The socket's receive buffer in bytes, for a client that is to
    /// stall: small, so the daemon's side fills up soon.</param>
    public static async Task<SseFeed> OpenAsync(LoopDaemon loop, string? lastEventId, int? receiveBuffer = null)
    {
        var handler = new SocketsHttpHandler();
        if (receiveBuffer is { } bytes)
        {
            handler.ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { ReceiveBufferSize = bytes };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            };
        }
        var client = new HttpClient(handler) { BaseAddress = new Uri(loop.ApiUrl), Timeout = Timeout.InfiniteTimeSpan };
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

    /// <summary>Everything until the daemon ends the stream: the events, and the kinds of the
    /// notices without an id (which do not move Last-Event-ID).</summary>
    public async Task<(List<SseEvent> Events, List<string> Notices)> ReadToEndAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = new List<SseEvent>();
        var notices = new List<string>();
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
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && kind is not null)
            {
                if (id is null)
                {
                    notices.Add(kind);
                }
                else
                {
                    events.Add(new SseEvent(id, kind, JsonNode.Parse(line[6..])!.AsObject()));
                }
                (id, kind) = (null, null);
            }
        }
        return (events, notices);
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
