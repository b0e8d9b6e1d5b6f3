namespace Loop.Domain.Tests;

using Loop.Runtime;

public sealed class LoopEventHubTests
{
    [Fact]
    public async Task A_slow_subscriber_loses_output_lines_past_its_backlog_but_never_a_state_change()
    {
        var hub = new LoopEventHub();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var events = hub.SubscribeAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        var first = events.MoveNextAsync(); // subscribes

        hub.Publish(new LoopEvent("run.started", DateTimeOffset.UnixEpoch, "ch_1", "run_1", "started"));
        for (var i = 0; i < 5_000; i++)
        {
            hub.Publish(new LoopEvent("run.output", DateTimeOffset.UnixEpoch, "ch_1", "run_1", $"line {i}"));
        }
        hub.Publish(new LoopEvent("run.finished", DateTimeOffset.UnixEpoch, "ch_1", "run_1", "the reply"));

        var received = new List<LoopEvent>();
        Assert.True(await first);
        received.Add(events.Current);
        while (received[^1].Kind != "run.finished" && await events.MoveNextAsync())
        {
            received.Add(events.Current);
        }
        Assert.Equal("run.started", received[0].Kind);
        Assert.Equal("run.finished", received[^1].Kind);
        var lines = received.Count(e => e.Kind == "run.output");
        Assert.InRange(lines, 1000, 1100);
        await stop.CancelAsync();
    }
}
