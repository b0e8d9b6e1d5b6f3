namespace Loop.Runtime;

using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

/// <summary>
/// Carries the live events of a cluster's nodes to one another through the PostgreSQL database they
/// share (LISTEN/NOTIFY on <see cref="Channel"/>): each node sends its own events and publishes the
/// others' to its hub as relayed (<see cref="LoopEvent.Node"/>), so the dashboard's live feed on any
/// node shows every node's. Best effort, as a live feed is: an event sent while the database is away
/// is dropped, and the store keeps what matters (runs, replies).
/// </summary>
public sealed class ClusterEventRelay(string connectionString, ILoopEvents events, NodeIdentity identity, ILogger<ClusterEventRelay> logger)
    : BackgroundService
{
    public const string Channel = "loop_events";

    // PostgreSQL refuses a notification payload of 8000 bytes or more; the text gives way.
    private const int MaxPayloadBytes = 7_900;
    private const int MaxQueued = 10_000;
    private const int MaxBatch = 100;
    private static readonly TimeSpan ReconnectAfter = TimeSpan.FromSeconds(1);

    private readonly Channel<LoopEvent> _outgoing = System.Threading.Channels.Channel.CreateBounded<LoopEvent>(
        new BoundedChannelOptions(MaxQueued) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(CollectAsync(stoppingToken), KeepGoingAsync("send", SendAsync, stoppingToken), KeepGoingAsync("listen", ListenAsync, stoppingToken));

    private async Task CollectAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var loopEvent in events.SubscribeAsync(stoppingToken))
            {
                _outgoing.Writer.TryWrite(loopEvent);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Sends the events queued meanwhile together: one round trip and one commit for a batch,
    /// where each notification would otherwise be a transaction of its own (and a wake-up of every
    /// listening node) while a burst of runs is what keeps the database busy.</summary>
    private async Task SendAsync(CancellationToken stoppingToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(stoppingToken);
        while (await _outgoing.Reader.WaitToReadAsync(stoppingToken))
        {
            await using var batch = connection.CreateBatch();
            while (batch.BatchCommands.Count < MaxBatch && _outgoing.Reader.TryRead(out var loopEvent))
            {
                var notify = new NpgsqlBatchCommand($"SELECT pg_notify('{Channel}', $1)");
                notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Encode(loopEvent, identity.NodeName) });
                batch.BatchCommands.Add(notify);
            }
            await batch.ExecuteNonQueryAsync(stoppingToken);
        }
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(stoppingToken);
        connection.Notification += (_, e) =>
        {
            if (Decode(e.Payload) is { } loopEvent && loopEvent.Node != identity.NodeName)
            {
                events.Publish(loopEvent);
            }
        };
        await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
        {
            await listen.ExecuteNonQueryAsync(stoppingToken);
        }
        while (true)
        {
            await connection.WaitAsync(stoppingToken);
        }
    }

    private async Task KeepGoingAsync(string what, Func<CancellationToken, Task> loop, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await loop(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception error) when (error is NpgsqlException or IOException or TimeoutException)
            {
                logger.LogWarning("The cluster's live events could not {What} ({Error}); reconnecting in {Delay}", what, error.Message, ReconnectAfter);
                await Task.Delay(ReconnectAfter, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>The event as one notification: its node, kind, time, channel, run and as much of its text as fits.</summary>
    public static string Encode(LoopEvent loopEvent, string node)
    {
        var text = loopEvent.Text;
        while (true)
        {
            var buffer = new ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WriteString("node", node);
                json.WriteString("kind", loopEvent.Kind);
                json.WriteString("at", loopEvent.At);
                json.WriteString("channel", loopEvent.ChannelId);
                json.WriteString("run", loopEvent.RunId);
                json.WriteString("text", text);
                json.WriteEndObject();
            }
            if (buffer.WrittenCount <= MaxPayloadBytes || text.Length == 0)
            {
                return Encoding.UTF8.GetString(buffer.WrittenSpan);
            }
            // Escapes can make the JSON longer than its text: shorten by the excess and try again.
            text = text[..Math.Max(0, text.Length - (buffer.WrittenCount - MaxPayloadBytes) - 16)] + "…";
        }
    }

    /// <summary>The event a notification carries, or null when it is not one of ours.</summary>
    public static LoopEvent? Decode(string payload)
    {
        try
        {
            using var document = JsonDocument.Parse(payload);
            var root = document.RootElement;
            return new LoopEvent(root.GetProperty("kind").GetString()!, root.GetProperty("at").GetDateTimeOffset(),
                root.GetProperty("channel").GetString(), root.GetProperty("run").GetString(), root.GetProperty("text").GetString()!)
            {
                Node = root.GetProperty("node").GetString(),
            };
        }
        catch (Exception error) when (error is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}
