namespace Loop.Discord.Tests;

using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

/// <summary>The REST client against Discord's rate limits and failures.</summary>
public sealed class RestTests : IAsyncLifetime
{
    private const string ChannelA = "410000000000000001";
    private const string ChannelB = "410000000000000002";
    private DiscordDouble _discord = null!;
    private readonly RecordingLogger<DiscordRestClient> _log = new();
    private DiscordRestClient _rest = null!;

    public async Task InitializeAsync()
    {
        _discord = await DiscordDouble.StartAsync();
        var options = new DiscordOptions(DiscordDouble.Token, DiscordDouble.AppId, null, new Uri(_discord.ApiUrl), new Uri(_discord.GatewayUrl))
        {
            Timings = new DiscordTimings(ServerErrorBackoff: TimeSpan.FromMilliseconds(100)),
        };
        _rest = new DiscordRestClient(options, TimeProvider.System, _log);
    }

    public async Task DisposeAsync()
    {
        _rest.Dispose();
        await _discord.DisposeAsync();
    }

    [Fact]
    public async Task A_route_429_is_waited_out_for_retry_after_and_the_bucket_headers_are_honoured_without_losing_a_message()
    {
        _discord.FailNext("POST", $"channels/{ChannelA}/messages", 429,
            new JsonObject { ["message"] = "You are being rate limited.", ["retry_after"] = 0.6, ["global"] = false },
            new() { ["X-RateLimit-Scope"] = "user", ["Retry-After"] = "1" });

        var started = DateTimeOffset.UtcNow;
        var sends = Enumerable.Range(0, 12).Select(i => _rest.CreateMessageAsync(ChannelA, $"message {i}", null, CancellationToken.None)).ToList();
        await Task.WhenAll(sends);

        var calls = _discord.Calls.Where(c => c.Path == $"channels/{ChannelA}/messages").ToList();
        Assert.Equal(429, calls[0].Status);
        Assert.True(calls[1].At - calls[0].At >= TimeSpan.FromMilliseconds(550), $"retried after {(calls[1].At - calls[0].At).TotalMilliseconds} ms");
        // Only the injected 429: the client waited for the bucket to reset instead of running into it (5 per second here).
        Assert.Single(calls, c => c.Status == 429);
        var delivered = _discord.MessagesIn(ChannelA).Select(m => (string)m["content"]!).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 12).Select(i => $"message {i}").Order(), delivered);
        Assert.True(DateTimeOffset.UtcNow - started >= TimeSpan.FromSeconds(2), "12 messages at 5 per second need at least two resets");
    }

    [Fact]
    public async Task Messages_sent_one_after_another_arrive_in_order_across_bucket_resets()
    {
        for (var i = 0; i < 8; i++)
        {
            await _rest.CreateMessageAsync(ChannelA, $"message {i}", null, CancellationToken.None);
        }
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"message {i}"), _discord.MessagesIn(ChannelA).Select(m => (string)m["content"]!));
        Assert.DoesNotContain(_discord.Calls, c => c.Status == 429);
    }

    [Fact]
    public async Task A_global_429_holds_back_every_route()
    {
        _discord.FailNext("POST", $"channels/{ChannelA}/messages", 429,
            new JsonObject { ["message"] = "You are being rate limited.", ["retry_after"] = 0.8, ["global"] = true },
            new() { ["X-RateLimit-Global"] = "true", ["X-RateLimit-Scope"] = "global", ["Retry-After"] = "1" });

        var message = _rest.CreateMessageAsync(ChannelA, "hello", null, CancellationToken.None);
        // Not the double having sent the 429 (the client may not have read it yet): the client saying
        // it holds back. Every request from then on must wait too.
        await Eventually.WaitAsync(() => _log.Lines.Any(l => l.Contains("(global): waiting", StringComparison.Ordinal)), "the client to take in the global 429");
        await _rest.TriggerTypingAsync(ChannelB, CancellationToken.None);
        await message;

        var limited = _discord.Calls.Single(c => c.Status == 429);
        var typing = _discord.Calls.Single(c => c.Path == $"channels/{ChannelB}/typing");
        Assert.True(typing.At - limited.At >= TimeSpan.FromMilliseconds(750), $"another route waited only {(typing.At - limited.At).TotalMilliseconds} ms");
        Assert.Equal("hello", (string)_discord.MessagesIn(ChannelA).Single()["content"]!);
    }

    [Fact]
    public async Task Server_errors_are_retried_with_backoff_and_the_message_arrives_once()
    {
        _discord.FailNext("POST", $"channels/{ChannelA}/messages", 502);
        _discord.FailNext("POST", $"channels/{ChannelA}/messages", 503, new JsonObject { ["message"] = "upstream", ["code"] = 0 });

        var id = await _rest.CreateMessageAsync(ChannelA, "survives", "123", CancellationToken.None);

        var calls = _discord.Calls.Where(c => c.Path == $"channels/{ChannelA}/messages").ToList();
        Assert.Equal([502, 503, 200], calls.Select(c => c.Status));
        // Lower bounds only (a busy machine makes every gap longer): 100 ms, then twice that.
        Assert.True(calls[1].At - calls[0].At >= TimeSpan.FromMilliseconds(95), $"first backoff {(calls[1].At - calls[0].At).TotalMilliseconds} ms");
        Assert.True(calls[2].At - calls[1].At >= TimeSpan.FromMilliseconds(190), $"the backoff grows: second {(calls[2].At - calls[1].At).TotalMilliseconds} ms");
        Assert.False(string.IsNullOrEmpty(id));
        var message = _discord.MessagesIn(ChannelA).Single();
        Assert.Equal("survives", (string)message["content"]!);
        Assert.Equal("123", (string)message["message_reference"]!["message_id"]!);
        Assert.All(calls, c => Assert.Equal("Bot " + DiscordDouble.Token, c.Authorization));
    }

    [Fact]
    public async Task A_client_error_is_reported_with_discords_message_and_not_retried()
    {
        var error = await Assert.ThrowsAsync<DiscordApiException>(() => _rest.SendAsync(HttpMethod.Get, "guilds/999/channels", null, CancellationToken.None));

        Assert.Equal(System.Net.HttpStatusCode.NotFound, error.Status);
        Assert.Contains("404: Not Found", error.Message);
        Assert.Single(_discord.Calls);
    }
}

/// <summary>Keeps what a component logs, so a test can wait until it has reacted to something.</summary>
public sealed class RecordingLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _lines.Enqueue(formatter(state, exception));
}
