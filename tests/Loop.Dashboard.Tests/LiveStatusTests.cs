namespace Loop.Dashboard.Tests;

using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class LiveStatusTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_indicator_says_reconnecting_while_the_daemon_is_down_and_live_again_after_its_restart()
    {
        await using var session = await fixture.OpenAsync();
        try
        {
            await session.RunAsync(async page =>
            {
                await Ui.GoToAsync(page, "chat", "Chat");
                var status = Ui.LiveStatus(page);
                await Expect(status).ToHaveTextAsync("live");

                await fixture.Daemon.StopAsync();
                await Expect(status).ToHaveTextAsync("reconnecting…");
                // Same home and port: the store keeps the browser's session.
                await fixture.Daemon.RestartAsync();
                await Expect(status).ToHaveTextAsync("live", new() { Timeout = Ui.RunTimeout });
                await Expect(Ui.Heading(page, "Chat")).ToBeVisibleAsync();
            });
        }
        finally
        {
            // The other tests share this daemon.
            if (!fixture.Daemon.IsRunning)
            {
                await fixture.Daemon.RestartAsync();
            }
        }
    }

    [Theory]
    [InlineData("Chat", "Chat")]
    [InlineData("Activity", "Activity")]
    [InlineData("Usage", "Usage")]
    [InlineData("Connectors", "Connectors")]
    [InlineData("Tokens", "API tokens")]
    public async Task A_page_opened_while_the_daemon_is_down_loads_once_it_is_back_without_a_reload(string link, string heading)
    {
        var channel = await fixture.Daemon.CreateChannelAsync();
        await using var session = await fixture.OpenAsync();
        try
        {
            await session.RunAsync(async page =>
            {
                await Ui.GoToAsync(page, "channels", "Channels");
                await Expect(Ui.LiveStatus(page)).ToHaveTextAsync("live");
                await page.EvaluateAsync("() => { window.__marker = 'same page'; }");

                await fixture.Daemon.StopAsync();
                await Expect(Ui.LiveStatus(page)).ToHaveTextAsync("reconnecting…");
                await Ui.MainNav(page).GetByRole(AriaRole.Link, new() { Name = link, Exact = true }).ClickAsync();
                await Expect(Ui.Heading(page, heading)).ToBeVisibleAsync();
                var unreachable = page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Loop is not reachable" });
                await Expect(unreachable.First).ToBeVisibleAsync();

                await fixture.Daemon.RestartAsync();
                await Expect(Ui.LiveStatus(page)).ToHaveTextAsync("live", new() { Timeout = Ui.RunTimeout });
                await Expect(unreachable).ToHaveCountAsync(0);
                await ExpectLoadedAsync(page, link, (string)channel["name"]!);
                Assert.Equal("same page", await page.EvaluateAsync<string?>("() => window.__marker"));
            });
        }
        finally
        {
            if (!fixture.Daemon.IsRunning)
            {
                await fixture.Daemon.RestartAsync();
            }
        }
    }

    /// <summary>Waits for what the page shows only once it has loaded from the daemon.</summary>
    private static Task ExpectLoadedAsync(IPage page, string link, string channelName) => link switch
    {
        "Chat" => Expect(page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true }).Locator("option").Filter(new() { HasText = channelName }))
            .ToHaveCountAsync(1),
        "Activity" => Expect(page.GetByRole(AriaRole.Log, new() { Name = "Live feed", Exact = true })).ToBeVisibleAsync(),
        "Usage" => Expect(page.GetByRole(AriaRole.Img, new() { Name = "Cost per day", Exact = true })).ToBeVisibleAsync(),
        "Connectors" => ExpectConnectorKindsAsync(page),
        "Tokens" => Expect(page.GetByRole(AriaRole.Table).GetByRole(AriaRole.Row).Nth(1)).ToBeVisibleAsync(),
        _ => throw new ArgumentOutOfRangeException(nameof(link), link, "no loaded part known for this page"),
    };

    /// <summary>The form to add a connector offers the kinds the daemon knows.</summary>
    private static async Task ExpectConnectorKindsAsync(IPage page)
    {
        await page.GetByTestId("add-connector").ClickAsync();
        await Expect(page.GetByTestId("connector-kind")).ToContainTextAsync("telegram");
    }
}
