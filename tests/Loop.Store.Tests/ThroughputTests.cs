namespace Loop.Store.Tests;

using System.Diagnostics;
using Loop.Domain.Channels;
using Xunit;
using Xunit.Abstractions;

/// <summary>A sanity check, printed rather than asserted: timing on a shared machine is too noisy
/// to fail a build on.</summary>
public sealed class ThroughputTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDatabase _db = new();

    [Fact]
    public async Task Appends_per_second_across_100_channels_with_8_writers()
    {
        const int Writers = 8;
        const int PerWriter = 2_500;
        await using var store = new SqliteLoopStore(_db.DatabasePath, TimeProvider.System);
        await store.MigrateAsync(CancellationToken.None);
        var channels = new List<string>();
        for (var i = 0; i < 100; i++)
        {
            channels.Add((await store.EnsureChannelAsync(Path.Combine(_db.Root, $"p{i}"), null, CancellationToken.None)).Channel.Id);
        }

        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < PerWriter; i++)
            {
                var channelId = channels[(writer * PerWriter + i) % channels.Count];
                await store.AppendMessageAsync(
                    new NewMessage(channelId, MessageRole.User, "bench", $"message {writer}/{i}: a line of chat of ordinary length"),
                    CancellationToken.None);
            }
        })));
        clock.Stop();

        var total = Writers * PerWriter;
        output.WriteLine($"{total} appends by {Writers} writers over {channels.Count} channels in {clock.ElapsedMilliseconds} ms: {total / clock.Elapsed.TotalSeconds:N0} appends/s");
        var stored = 0;
        foreach (var channelId in channels)
        {
            stored += (await store.ListMessagesAsync(channelId, 0, 10_000, CancellationToken.None)).Count;
        }
        Assert.Equal(total, stored);
    }

    public void Dispose() => _db.Dispose();
}
