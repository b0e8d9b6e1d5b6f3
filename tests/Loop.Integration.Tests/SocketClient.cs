namespace Loop.Integration.Tests;

using System.Net.Http.Headers;
using System.Net.Sockets;
using Loop.Testing;

/// <summary>HTTP over the daemon's unix socket, as <c>loop mcp</c> inside an agent container calls it.</summary>
internal static class SocketClient
{
    public static HttpClient Create(LoopDaemon loop, string? token)
    {
        var path = new Uri(loop.SocketUrl).LocalPath;
        var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        { BaseAddress = new Uri("http://localhost") };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }
}
