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

    [Fact]
    public async Task A_follower_that_stops_reading_is_cut_off_at_its_bound_and_its_queue_let_go()
    {
        var hub = new LoopEventHub();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var stalled = hub.FollowAsync(null, stop.Token).GetAsyncEnumerator(stop.Token);
        var first = stalled.MoveNextAsync(); // subscribes, then reads one event and no more

        for (var i = 0; i < 10 * LoopEventHub.FollowerBacklogLimit; i++)
        {
            hub.Publish(new LoopEvent("message.received", DateTimeOffset.UnixEpoch, "ch_1", null, $"message {i}"));
        }

        Assert.Equal(0, hub.SubscriberCount);
        // What it had not read was dropped with it (at most the one event it took before it
        // stopped remains), and its sequence ends rather than waiting.
        var received = 0;
        if (await first)
        {
            received++;
            while (await stalled.MoveNextAsync())
            {
                received++;
            }
        }
        Assert.InRange(received, 0, 1);
        await stalled.DisposeAsync();
    }

    [Fact]
    public async Task A_follower_is_also_cut_off_by_the_size_of_what_it_has_not_read()
    {
        var hub = new LoopEventHub();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var stalled = hub.FollowAsync(null, stop.Token).GetAsyncEnumerator(stop.Token);
        var first = stalled.MoveNextAsync();
        var reply = new string('x', 100_000);

        var published = 0;
        while (hub.SubscriberCount > 0 && published < LoopEventHub.FollowerBacklogLimit)
        {
            hub.Publish(new LoopEvent("run.finished", DateTimeOffset.UnixEpoch, "ch_1", "run_1", reply));
            published++;
        }

        Assert.Equal(0, hub.SubscriberCount);
        Assert.InRange(published, 2, LoopEventHub.FollowerTextLimit / reply.Length + 2);
        await first;
        await stalled.DisposeAsync();
    }

    [Fact]
    public async Task A_chat_adapters_subscription_is_never_cut_off()
    {
        var hub = new LoopEventHub();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var events = hub.SubscribeAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        var first = events.MoveNextAsync();
        for (var i = 0; i < 3 * LoopEventHub.FollowerBacklogLimit; i++)
        {
            hub.Publish(new LoopEvent("run.finished", DateTimeOffset.UnixEpoch, "ch_1", $"run_{i}", "reply"));
        }

        Assert.Equal(1, hub.SubscriberCount);
        Assert.True(await first);
        var received = 1;
        while (received < 3 * LoopEventHub.FollowerBacklogLimit && await events.MoveNextAsync())
        {
            received++;
        }
        Assert.Equal(3 * LoopEventHub.FollowerBacklogLimit, received);
        await stop.CancelAsync();
    }
}
