namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Loop.Testing;

/// <summary>The live feed as the dashboard uses it: resuming after a reconnect, the recent events a
/// page starts with, and the end of a long conversation.</summary>
public sealed class EventFeedTests
{
    [Fact]
    public async Task A_feed_that_reconnects_with_its_last_event_id_gets_exactly_what_it_missed()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;

        string lastSeen;
        using (var feed = await SseFeed.OpenAsync(loop, lastEventId: null))
        {
            await loop.PostMessageAsync(channel, "[[reply first]]");
            var finished = await feed.WaitForAsync("run.finished");
            lastSeen = finished.Id;
        }

        // While nobody listens: a second message and its run.
        await loop.PostMessageAsync(channel, "[[reply second]]");
        var runs = await loop.WaitForFinishedRunsAsync(channel, 2);
        var second = (string)runs[1]["id"]!;

        using var resumed = await SseFeed.OpenAsync(loop, lastSeen);
        var missed = new List<SseEvent>();
        while (missed.LastOrDefault()?.Kind != "run.finished")
        {
            missed.Add(await resumed.NextAsync());
        }
        Assert.Equal(["message.received", "run.queued", "run.started", "run.finished"], missed.Select(e => e.Kind));
        Assert.Equal("alice: [[reply second]]", (string)missed[0].Data["text"]!);
        Assert.All(missed.Skip(1), e => Assert.Equal(second, (string)e.Data["run_id"]!));
        Assert.Equal("second", (string)missed[^1].Data["text"]!);
        Assert.All(missed, e => Assert.Equal(channel, (string)e.Data["channel_id"]!));

        // An id from another daemon process (say, before a restart) replays everything kept since this one started.
        using var afterRestart = await SseFeed.OpenAsync(loop, "0badc0de.99999");
        var replayed = await afterRestart.NextAsync();
        Assert.Equal("message.received", replayed.Kind);
        Assert.Equal("alice: [[reply first]]", (string)replayed.Data["text"]!);
    }

    [Fact]
    public async Task Recent_events_come_newest_first_without_output_lines_and_only_for_users()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(channel, "[[reply streamed line]]");
        var run = (string)(await loop.WaitForFinishedRunsAsync(channel, 1))[0]["id"]!;

        var recent = await loop.GetArrayAsync("/api/events/recent?limit=3");
        Assert.Equal(["run.finished", "run.started", "run.queued"], recent.Select(e => (string)e!["kind"]!));
        Assert.All(recent, e => Assert.Equal(run, (string)e!["run_id"]!));
        var all = await loop.GetArrayAsync("/api/events/recent");
        Assert.Equal(4, all.Count); // message.received too, and no run.output lines
        Assert.Equal("message.received", (string)all[^1]!["kind"]!);
        Assert.Equal(4, all.Select(e => (string)e!["id"]!).Distinct().Count());

        using var container = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{channel}/token"))["token"]!;
        container.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.Forbidden, (await container.GetAsync("/api/events/recent")).StatusCode);
        using var anonymous = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/events/recent")).StatusCode);
    }

    [Fact]
    public async Task Latest_gives_the_end_of_the_conversation_in_order_and_pages_back_with_before()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        await loop.PostMessageAsync(channel, "[[reply one]]");
        await loop.WaitForFinishedRunsAsync(channel, 1);
        await loop.PostMessageAsync(channel, "[[reply two]]");
        await loop.WaitForFinishedRunsAsync(channel, 2);

        var latest = await loop.GetArrayAsync($"/api/channels/{channel}/messages?latest=2");
        Assert.Equal(["[[reply two]]", "two"], latest.Select(m => (string)m!["content"]!));
        Assert.True((long)latest[0]!["id"]! < (long)latest[1]!["id"]!);
        var before = await loop.GetArrayAsync($"/api/channels/{channel}/messages?latest=10&before={(long)latest[0]!["id"]!}");
        Assert.Equal(["[[reply one]]", "one"], before.Select(m => (string)m!["content"]!));

        using var bad = await loop.Http.GetAsync($"/api/channels/{channel}/messages?latest=0");
        var problem = await LoopDaemon.ReadObjectAsync(bad, HttpStatusCode.BadRequest);
        Assert.Contains("limit must be between 1 and", (string)problem["detail"]!);
    }

    [Fact]
    public async Task A_client_that_stops_reading_is_cut_off_and_picks_up_from_its_last_event_within_the_kept_ones()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var channel = (string)(await loop.CreateChannelAsync())["id"]!;
        using var stalled = await SseFeed.OpenAsync(loop, lastEventId: null, receiveBuffer: 4096);
        // The feed may answer before it has subscribed: an event published before then is not its.
        var subscribed = DateTime.UtcNow.AddSeconds(60);
        while (await SubscribersAsync(loop) == 0)
        {
            Assert.True(DateTime.UtcNow < subscribed, "the feed never subscribed");
            await Task.Delay(50);
        }
        await ResetSessionsAsync(loop, channel, 1);
        var seen = await stalled.NextAsync();
        Assert.Equal(1, await SubscribersAsync(loop));

        // It reads no more. The daemon goes on: the connection's buffers fill up, then the client's
        // queue, until the daemon cuts it off rather than hold ever more for it.
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (await SubscribersAsync(loop) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "a client that stopped reading was still fed after 3 minutes");
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => ResetSessionsAsync(loop, channel, 50)));
        }
        var newest = Seq((string)(await loop.GetArrayAsync("/api/events/recent?limit=1"))[0]!["id"]!);

        // Reading again, it gets what was already on its way, then a notice, then the end (no error).
        var (delivered, notices) = await stalled.ReadToEndAsync();
        Assert.Equal(["feed.behind"], notices);
        var last = delivered.LastOrDefault() ?? seen;
        Assert.Equal(Enumerable.Range(0, delivered.Count).Select(i => Seq(seen.Id) + 1 + i), delivered.Select(e => Seq(e.Id)));
        Assert.True(Seq(last.Id) < newest, "the stalled client had everything: it was not behind");

        // Resuming from the last event it got, it is given what it missed, as far as the daemon keeps events.
        using var resumed = await SseFeed.OpenAsync(loop, last.Id);
        var replayed = new List<SseEvent>();
        while (replayed.Count == 0 || Seq(replayed[^1].Id) < newest)
        {
            replayed.Add(await resumed.NextAsync());
        }
        var missed = newest - Seq(last.Id);
        Assert.Equal(Math.Min(missed, LoopKeepsEvents), replayed.Count);
        Assert.Equal(Enumerable.Range(0, replayed.Count).Select(i => newest - replayed.Count + 1 + i), replayed.Select(e => Seq(e.Id)));
        Assert.All(replayed, e => Assert.Equal(("channel.session_reset", channel), (e.Kind, (string)e.Data["channel_id"]!)));
    }

    /// <summary>The events the daemon keeps for feeds that reconnect (RecentLimit).</summary>
    private const int LoopKeepsEvents = 500;

    private static long Seq(string eventId) => long.Parse(eventId[(eventId.LastIndexOf('.') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<int> SubscribersAsync(LoopDaemon loop) => (int)(await loop.GetObjectAsync("/api/runtime"))["event_subscribers"]!;

    /// <summary>Each reset publishes one small event, channel.session_reset, and starts no run.</summary>
    private static async Task ResetSessionsAsync(LoopDaemon loop, string channel, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await loop.Http.PostAsync($"/api/channels/{channel}/session/reset", null);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }
}
