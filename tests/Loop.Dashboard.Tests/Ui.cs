namespace Loop.Dashboard.Tests;

using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

/// <summary>The parts of the UI contract (/tmp/ui-contract.md) several tests look for.</summary>
public static class Ui
{
    /// <summary>For anything that waits on an agent container run.</summary>
    public const float RunTimeout = 30_000;

    public static ILocator MainNav(IPage page) => page.GetByRole(AriaRole.Navigation, new() { Name = "Main" });

    public static ILocator Heading(IPage page, string name) =>
        page.GetByRole(AriaRole.Heading, new() { Name = name, Exact = true, Level = 1 });

    public static ILocator Button(IPage page, string name) =>
        page.GetByRole(AriaRole.Button, new() { Name = name, Exact = true });

    public static ILocator Field(IPage page, string label) => page.GetByLabel(label, new() { Exact = true });

    public static ILocator LiveStatus(IPage page) => page.GetByTestId("live-status");

    /// <summary>Opens a page of the shell and waits for its h1.</summary>
    public static async Task GoToAsync(IPage page, string route, string heading)
    {
        await page.GotoAsync("/#/" + route);
        await Expect(Heading(page, heading)).ToBeVisibleAsync();
    }

    /// <summary>The contract for a field error: aria-invalid="true" on the input, and the message in
    /// a &lt;p class="field-error"&gt; right after it that aria-describedby points to.</summary>
    public static async Task ExpectFieldErrorAsync(ILocator input, string message)
    {
        await Expect(input).ToHaveAttributeAsync("aria-invalid", "true");
        var next = input.Locator("xpath=following-sibling::*[1]");
        await Expect(next).ToHaveClassAsync(new Regex(@"(^|\s)field-error(\s|$)"));
        await Expect(next).ToContainTextAsync(message);
        Assert.Equal("p", await next.EvaluateAsync<string>("e => e.localName"));
        await Expect(input).ToHaveAccessibleDescriptionAsync(new Regex(Regex.Escape(message)));
    }

    /// <summary>The texts of an svg chart drawn (partly) outside it, where the page cuts them off.</summary>
    public static Task<string[]> LabelsCutOffAsync(ILocator chart) => chart.EvaluateAsync<string[]>(@"svg => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text')].filter((text) => {
            const r = text.getBoundingClientRect();
            return r.left < box.left || r.right > box.right || r.top < box.top || r.bottom > box.bottom;
        }).map((text) => text.textContent);
    }");

    /// <summary>Accepts every confirm() of the page (Reset session, Delete, Revoke).</summary>
    public static void AcceptDialogs(IPage page) => page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
}
