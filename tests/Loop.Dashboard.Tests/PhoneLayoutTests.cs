namespace Loop.Dashboard.Tests;

using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class PhoneLayoutTests(DashboardFixture fixture)
{
    [Fact]
    public async Task On_a_phone_the_nav_reaches_every_page_and_nothing_scrolls_sideways()
    {
        await using var session = await fixture.OpenAsync(viewport: DashboardFixture.Phone);
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "chat", "Chat");
            await ExpectNoHorizontalScrollAsync(page);
            await Screenshots.SaveAsync(page, "phone");

            foreach (var (link, heading) in new[] { ("Tasks", "Tasks"), ("Connectors", "Connectors"), ("Usage", "Usage"), ("Tokens", "API tokens"), ("Chat", "Chat") })
            {
                // The links show at once, or behind a menu button.
                var target = Ui.MainNav(page).GetByRole(AriaRole.Link, new() { Name = link, Exact = true });
                if (!await target.IsVisibleAsync())
                {
                    await page.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("menu", RegexOptions.IgnoreCase) }).ClickAsync();
                }
                await target.ClickAsync();
                await Expect(Ui.Heading(page, heading)).ToBeVisibleAsync();
                await ExpectNoHorizontalScrollAsync(page);
            }
        });
    }

    private static async Task ExpectNoHorizontalScrollAsync(IPage page)
    {
        var widths = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, window.innerWidth]");
        var (scrollWidth, innerWidth) = (widths[0], widths[1]);
        Assert.True(scrollWidth <= innerWidth, $"{page.Url} scrolls sideways: scrollWidth {scrollWidth} > innerWidth {innerWidth}");
    }
}
