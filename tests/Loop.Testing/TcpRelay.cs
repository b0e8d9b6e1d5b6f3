namespace Loop.Testing;

using System.Net;
using System.Net.Sockets;

/// <summary>
/// Passes TCP connections on 127.0.0.1 through to a real server, unless told to stall the next one:
/// that one is accepted and then neither forwarded nor answered, as a network that stopped delivering
/// would, until its client gives up. For servers a test cannot pause (the shared mail server).
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _host;
    private readonly int _port;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly Queue<TaskCompletionSource> _stalls = new();
    private readonly List<Task> _connections = [];
    private Task _accepting = Task.CompletedTask;

    private TcpRelay(string host, int port) => (_host, _port) = (host, port);

    public static TcpRelay Start(string host, int port)
    {
        var relay = new TcpRelay(host, port);
        relay._listener.Start();
        relay._accepting = relay.AcceptAsync();
        return relay;
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Stalls the next connection; the task completes when it has been accepted.</summary>
    public Task StallNext()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _stalls.Enqueue(arrived);
        }
        return arrived.Task;
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                TaskCompletionSource? stalled;
                lock (_gate)
                {
                    _stalls.TryDequeue(out stalled);
                    _connections.Add(stalled is null ? RelayAsync(client) : HoldAsync(client, stalled));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Reads and drops what the client sends until it closes the connection.</summary>
    private async Task HoldAsync(TcpClient client, TaskCompletionSource arrived)
    {
        using (client)
        {
            arrived.TrySetResult();
            var buffer = new byte[4096];
            try
            {
                while (await client.GetStream().ReadAsync(buffer, _stop.Token) > 0)
                {
                }
            }
            catch (Exception error) when (error is IOException or SocketException or OperationCanceledException)
            {
            }
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        using (client)
        using (var server = new TcpClient())
        {
            try
            {
                await server.ConnectAsync(_host, _port, _stop.Token);
                using var done = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                // Either side closing ends both directions.
                await Task.WhenAny(
                    client.GetStream().CopyToAsync(server.GetStream(), done.Token),
                    server.GetStream().CopyToAsync(client.GetStream(), done.Token));
                await done.CancelAsync();
            }
            catch (Exception error) when (error is IOException or SocketException or OperationCanceledException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] connections;
        lock (_gate)
        {
            connections = [.. _connections];
        }
        await Task.WhenAll(connections);
        _stop.Dispose();
    }
}
