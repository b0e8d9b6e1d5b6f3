namespace Loop.Dashboard.Tests;

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
}
