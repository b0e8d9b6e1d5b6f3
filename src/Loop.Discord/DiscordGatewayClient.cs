namespace Loop.Discord;

using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

/// <summary>
/// One connection to Discord's gateway (v10, JSON), kept alive: HELLO, IDENTIFY (or RESUME with
/// the session id and last sequence, to <c>resume_gateway_url</c>), heartbeats at the interval
/// Discord gives with the first one jittered, a missing heartbeat ACK taken as a dead connection,
/// reconnects with backoff, and a clear stop on the close codes that retrying cannot fix.
/// Dispatches (op 0) are handed to <c>onDispatch</c> in the order they arrive.
/// </summary>
public sealed class DiscordGatewayClient : IAsyncDisposable
{
    private readonly DiscordOptions _options;
    private readonly Func<string, JsonNode?, CancellationToken, Task> _onDispatch;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private Task? _loop;
    private string? _sessionId;
    private string? _resumeUrl;
    private long? _sequence;
    private volatile bool _acknowledged;
    private volatile string _status = "not started";

    public DiscordGatewayClient(DiscordOptions options, Func<string, JsonNode?, CancellationToken, Task> onDispatch, TimeProvider time, ILogger<DiscordGatewayClient> logger)
    {
        _options = options;
        _onDispatch = onDispatch;
        _time = time;
        _logger = logger;
    }

    /// <summary>connected as NAME, connecting, reconnecting: why, failed: why.</summary>
    public string Status => _status;

    /// <summary>The bot's own user id (from READY).</summary>
    public string? UserId { get; private set; }

    /// <summary>The application id (from READY).</summary>
    public string? ApplicationId { get; private set; }

    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var resuming = _sessionId is not null && _sequence is not null;
            var url = resuming && _resumeUrl is not null ? _resumeUrl : _options.GatewayUrl.AbsoluteUri;
            _status = failures == 0 && !resuming ? "connecting" : _status.StartsWith("reconnecting", StringComparison.Ordinal) ? _status : "reconnecting";
            Ending ending;
            try
            {
                ending = await ConnectOnceAsync(url, resuming, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception error) when (error is WebSocketException or IOException or System.Text.Json.JsonException or InvalidOperationException)
            {
                ending = new Ending($"connection failed: {error.Message}");
            }

            if (ending.CloseCode is int code && FatalReason(code) is { } fatal)
            {
                _status = $"failed: {fatal}";
                _logger.LogError("Discord gateway closed the connection with {CloseCode}: {Reason}. Not reconnecting; fix the configuration and restart Loop", code, fatal);
                return;
            }
            if (ending.CloseCode is 4007 or 4009 || ending.ForgetSession)
            {
                _sessionId = null;
                _sequence = null;
            }
            failures = ending.WasReady ? 1 : failures + 1;
            var delay = ending.Delay ?? Backoff(failures);
            _status = $"reconnecting: {ending.Reason}";
            _logger.LogWarning("Discord gateway connection ended ({Reason}); reconnecting in {DelayMs} ms ({Mode})",
                ending.Reason, (int)delay.TotalMilliseconds, _sessionId is null ? "identify" : "resume");
            try
            {
                await Task.Delay(delay, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        _status = "stopped";
    }

    private TimeSpan Backoff(int failures)
    {
        var timings = _options.Timings;
        var ms = Math.Min(timings.Reconnect.TotalMilliseconds * Math.Pow(2, Math.Max(0, failures - 1)), timings.ReconnectCap.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms * (0.75 + Random.Shared.NextDouble() * 0.5));
    }

    /// <summary>Null when the close code allows a reconnect; otherwise what the user must fix.</summary>
    public static string? FatalReason(int closeCode) => closeCode switch
    {
        4004 => "authentication failed (4004): discord_token is wrong or was reset; copy the bot token again from the developer portal",
        4010 => "invalid shard (4010)",
        4011 => "sharding required (4011): the bot is in too many guilds for one connection",
        4012 => "invalid API version (4012)",
        4013 => "invalid intents (4013)",
        4014 => "disallowed intents (4014): enable the MESSAGE CONTENT privileged intent for the bot in the developer portal (Bot > Privileged Gateway Intents)",
        _ => null,
    };

    private async Task<Ending> ConnectOnceAsync(string url, bool resuming, CancellationToken cancellationToken)
    {
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(WithQuery(url), cancellationToken);
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var wasReady = false;
        Task heartbeat = Task.CompletedTask;
        try
        {
            var hello = await ReceiveAsync(socket, cancellationToken);
            if (hello is null || (int?)hello["op"] != 10)
            {
                return new Ending(hello is null ? $"closed before HELLO ({Describe(socket)})" : "the first payload was not HELLO", (int?)socket.CloseStatus);
            }
            var interval = TimeSpan.FromMilliseconds((double)hello["d"]!["heartbeat_interval"]!);
            _acknowledged = true;
            heartbeat = HeartbeatAsync(socket, interval, connection.Token);

            if (resuming)
            {
                await SendAsync(socket, new JsonObject
                {
                    ["op"] = 6,
                    ["d"] = new JsonObject { ["token"] = _options.Token, ["session_id"] = _sessionId, ["seq"] = _sequence },
                }, cancellationToken);
            }
            else
            {
                await SendAsync(socket, new JsonObject
                {
                    ["op"] = 2,
                    ["d"] = new JsonObject
                    {
                        ["token"] = _options.Token,
                        ["intents"] = DiscordOptions.Intents,
                        ["properties"] = new JsonObject { ["os"] = Environment.OSVersion.Platform.ToString().ToLowerInvariant(), ["browser"] = "loop", ["device"] = "loop" },
                    },
                }, cancellationToken);
            }

            while (true)
            {
                var receive = ReceiveAsync(socket, connection.Token);
                if (await Task.WhenAny(receive, heartbeat) == heartbeat)
                {
                    // No ACK since the last heartbeat: the connection is a zombie. Drop it without a
                    // 1000/1001 close so the session stays resumable.
                    socket.Abort();
                    return new Ending("no heartbeat ACK: connection presumed dead", null, WasReady: wasReady, Delay: TimeSpan.Zero);
                }
                var payload = await receive;
                if (payload is null)
                {
                    return new Ending($"closed by Discord ({Describe(socket)})", (int?)socket.CloseStatus, WasReady: wasReady);
                }
                switch ((int?)payload["op"])
                {
                    case 0:
                        if (payload["s"] is JsonValue s && s.TryGetValue<long>(out var sequence))
                        {
                            _sequence = sequence;
                        }
                        var type = (string?)payload["t"] ?? "";
                        var data = payload["d"];
                        if (type == "READY")
                        {
                            _sessionId = (string?)data?["session_id"];
                            _resumeUrl = (string?)data?["resume_gateway_url"];
                            UserId = (string?)data?["user"]?["id"];
                            ApplicationId = (string?)data?["application"]?["id"];
                            wasReady = true;
                            _status = $"connected as {(string?)data?["user"]?["username"]}";
                            _logger.LogInformation("Discord gateway ready: {User} ({UserId}), session {SessionId}", (string?)data?["user"]?["username"], UserId, _sessionId);
                        }
                        else if (type == "RESUMED")
                        {
                            wasReady = true;
                            _status = _status.StartsWith("reconnecting", StringComparison.Ordinal) ? "connected (resumed)" : _status;
                            _logger.LogInformation("Discord gateway resumed session {SessionId} at sequence {Sequence}", _sessionId, _sequence);
                        }
                        try
                        {
                            await _onDispatch(type, data, cancellationToken);
                        }
                        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                        {
                            _logger.LogError(error, "Handling Discord {Event} failed", type);
                        }
                        break;
                    case 1:
                        await SendHeartbeatAsync(socket, cancellationToken);
                        break;
                    case 7:
                        await CloseForResumeAsync(socket);
                        return new Ending("Discord asked for a reconnect", null, WasReady: wasReady, Delay: TimeSpan.Zero);
                    case 9:
                        var resumable = (bool?)payload["d"] == true;
                        await CloseForResumeAsync(socket);
                        var wait = TimeSpan.FromMilliseconds(Random.Shared.Next(1000, 5001) * _options.Timings.InvalidSession.TotalMilliseconds / 5000);
                        return new Ending(resumable ? "invalid session (resumable)" : "invalid session: identifying again", null,
                            ForgetSession: !resumable, WasReady: wasReady, Delay: wait);
                    case 11:
                        _acknowledged = true;
                        break;
                }
            }
        }
        finally
        {
            await connection.CancelAsync();
            try
            {
                await heartbeat;
            }
            catch (OperationCanceledException)
            {
            }
            catch (WebSocketException)
            {
            }
            if (cancellationToken.IsCancellationRequested && socket.State == WebSocketState.Open)
            {
                // Shutting down: a normal close ends the session, so Discord shows the bot offline at once.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                try
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "shutting down", timeout.Token);
                }
                catch (Exception error) when (error is WebSocketException or OperationCanceledException)
                {
                }
            }
        }
    }

    private static string Describe(WebSocket socket) =>
        socket.CloseStatus is { } status ? $"{(int)status} {socket.CloseStatusDescription}".TrimEnd() : "no close code";

    private static async Task CloseForResumeAsync(ClientWebSocket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            // Not 1000/1001: those would end the session we want to resume.
            await socket.CloseOutputAsync((WebSocketCloseStatus)4000, "reconnecting", timeout.Token);
        }
        catch (Exception error) when (error is WebSocketException or OperationCanceledException)
        {
            socket.Abort();
        }
    }

    /// <summary>Beats until an ACK goes missing (returns) or the connection ends (throws cancelled).</summary>
    private async Task HeartbeatAsync(ClientWebSocket socket, TimeSpan interval, CancellationToken cancellationToken)
    {
        // Jitter the first beat so a fleet of reconnecting clients does not beat in step.
        await Task.Delay(interval * Random.Shared.NextDouble(), _time, cancellationToken);
        while (true)
        {
            if (!_acknowledged)
            {
                return;
            }
            _acknowledged = false;
            await SendHeartbeatAsync(socket, cancellationToken);
            await Task.Delay(interval, _time, cancellationToken);
        }
    }

    private Task SendHeartbeatAsync(ClientWebSocket socket, CancellationToken cancellationToken) =>
        SendAsync(socket, new JsonObject { ["op"] = 1, ["d"] = _sequence }, cancellationToken);

    private async Task SendAsync(ClientWebSocket socket, JsonObject payload, CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetBytes(payload.ToJsonString());
        await _sendGate.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>The next whole message, or null when the server closed the connection.</summary>
    private static async Task<JsonNode?> ReceiveAsync(ClientWebSocket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            ValueWebSocketReceiveResult result;
            try
            {
                result = await socket.ReceiveAsync(buffer.AsMemory(), cancellationToken);
            }
            catch (WebSocketException) when (socket.State is WebSocketState.Aborted or WebSocketState.Closed or WebSocketState.CloseReceived)
            {
                return null;
            }
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return JsonNode.Parse(message.ToArray());
            }
        }
    }

    private static Uri WithQuery(string url)
    {
        var builder = new UriBuilder(url);
        if (string.IsNullOrEmpty(builder.Query))
        {
            builder.Query = "v=10&encoding=json";
        }
        return builder.Uri;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }
        }
        _stop.Dispose();
    }

    /// <param name="Delay">How long to wait before reconnecting; null means backoff.</param>
    private sealed record Ending(string Reason, int? CloseCode = null, bool ForgetSession = false, bool WasReady = false, TimeSpan? Delay = null);
}
