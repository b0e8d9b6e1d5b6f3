namespace Loop.Dashboard.Tests;

using System.Globalization;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class RuntimePageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_pool_capacity_is_the_configured_max_concurrent_containers()
    {
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "runtime", "Runtime");
            foreach (var section in new[] { "Node", "Nodes", "Container pool", "Channel grains", "Runs per minute", "Run duration", "Store", "Docker engine" })
            {
                await Expect(page.GetByRole(AriaRole.Heading, new() { Name = section, Exact = true, Level = 2 })).ToBeVisibleAsync();
            }
            // One node alone is a cluster of one: it lists itself, active.
            var thisNode = page.GetByTestId("nodes").GetByRole(AriaRole.Row).Filter(new() { HasText = "(this one)" });
            await Expect(thisNode).ToHaveCountAsync(1);
            await Expect(thisNode).ToContainTextAsync("active");
            var capacity = DashboardFixture.MaxConcurrentContainers.ToString(CultureInfo.InvariantCulture);
            await Expect(page.GetByTestId("pool-capacity")).ToHaveTextAsync(capacity);
            var health = await fixture.Daemon.GetObjectAsync("/api/health");
            Assert.Equal(capacity, health["queue"]!["capacity"]!.ToJsonString());
            await Expect(page.GetByTestId("pool-running")).ToHaveTextAsync("0");
            await Expect(page.GetByTestId("pool-waiting")).ToHaveTextAsync("0");
            await Expect(page.GetByRole(AriaRole.Img, new() { Name = "Runs per minute", Exact = true })).ToBeVisibleAsync();
            foreach (var percentile in new[] { "duration-p50", "duration-p90", "duration-p99" })
            {
                await Expect(page.GetByTestId(percentile)).ToBeVisibleAsync();
            }

            // It follows a run as it happens, without a reload.
            await page.EvaluateAsync("() => { window.__marker = 'same page'; }");
            var channel = await fixture.Daemon.CreateChannelAsync();
            await fixture.Daemon.PostMessageAsync((string)channel["id"]!, "[[sleep 8]] [[reply slow one]]");
            await Expect(page.GetByTestId("pool-running")).ToHaveTextAsync("1", new() { Timeout = Ui.RunTimeout });
            var actor = page.GetByRole(AriaRole.Row).Filter(new() { HasText = (string)channel["name"]! });
            await Expect(actor).ToHaveCountAsync(1);
            await Screenshots.SaveAsync(page, "runtime");
            await Expect(page.GetByTestId("pool-running")).ToHaveTextAsync("0", new() { Timeout = Ui.RunTimeout });
            Assert.Equal("same page", await page.EvaluateAsync<string?>("() => window.__marker"));
        });
    }

    [Fact]
    public async Task After_one_run_the_page_says_one_run_and_its_chart_fills_its_card_with_every_label_inside()
    {
        // Its own daemon: the shared one has the other tests' runs.
        await using var daemon = await LoopDaemon.StartAsync();
        var channelId = (string)(await daemon.CreateChannelAsync())["id"]!;
        await daemon.PostMessageAsync(channelId, "[[reply done]]");
        await daemon.WaitForFinishedRunsAsync(channelId, 1);

        await using var session = await fixture.OpenAsync(daemon: daemon);
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "runtime", "Runtime");
            await Expect(page.GetByText("1 run in the last hour", new() { Exact = true })).ToBeVisibleAsync();
            await Expect(page.GetByText("1 run finished in the last 60 minutes", new() { Exact = true })).ToBeVisibleAsync();

            var chart = page.GetByRole(AriaRole.Img, new() { Name = "Runs per minute", Exact = true });
            await Expect(chart).ToBeVisibleAsync();
            var share = await chart.EvaluateAsync<double>("svg => svg.getBoundingClientRect().width / svg.closest('section').getBoundingClientRect().width");
            Assert.True(share > 0.9, $"the chart is {share:P0} as wide as its card");
            Assert.Empty(await Ui.LabelsCutOffAsync(chart));
        });
    }
}
