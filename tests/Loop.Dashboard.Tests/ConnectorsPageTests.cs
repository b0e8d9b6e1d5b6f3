namespace Loop.Dashboard.Tests;

using Loop.Telegram.Tests;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class ConnectorsPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task A_connector_is_added_with_its_kinds_form_corrected_where_it_is_wrong_edited_and_disabled_and_its_password_never_shown()
    {
        var name = "Mailbox " + Guid.NewGuid().ToString("N")[..6];
        const string Password = "mail-password-never-shown";
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "connectors", "Connectors");
            await page.GetByTestId("add-connector").ClickAsync();
            await page.GetByTestId("connector-kind").SelectOptionAsync("email");
            await Ui.Field(page, "Name").FillAsync(name);
            await Ui.Field(page, "imap").FillAsync("imap.example.com");
            await Ui.Field(page, "smtp").FillAsync("smtp.example.com:587");
            await Ui.Field(page, "username").FillAsync("loop");
            await Ui.Field(page, "password").FillAsync(Password);
            await Ui.Field(page, "address").FillAsync("loop@example.com");
            await Ui.Button(page, "Add").ClickAsync();

            var imap = Ui.Field(page, "imap");
            await Expect(imap).ToHaveAttributeAsync("aria-invalid", "true");
            await Expect(imap).ToHaveAccessibleDescriptionAsync(new System.Text.RegularExpressions.Regex("imap must be host:port"));
            await imap.FillAsync("imap.example.com:993");
            await Ui.Button(page, "Add").ClickAsync();

            var row = page.GetByTestId("connectors").GetByRole(AriaRole.Row).Filter(new() { HasText = name });
            await Expect(row).ToContainTextAsync("email");
            await Expect(row).ToContainTextAsync("nobody yet: add senders");
            await Screenshots.SaveAsync(page, "connectors");

            await row.GetByRole(AriaRole.Button, new() { Name = "Edit", Exact = true }).ClickAsync();
            await Expect(Ui.Field(page, "password")).ToHaveAttributeAsync("placeholder", "set (leave empty to keep it)");
            await Ui.Field(page, "allowed_senders").FillAsync("alice@example.com, @example.org");
            await Ui.Button(page, "Save").ClickAsync();
            await Expect(row).ToContainTextAsync("alice@example.com, @example.org");

            await row.GetByRole(AriaRole.Button, new() { Name = "Disable", Exact = true }).ClickAsync();
            await Expect(row.GetByTestId("connector-state")).ToHaveTextAsync("disabled");
            Assert.DoesNotContain(Password, await page.ContentAsync());
        });
    }

    [Fact]
    public async Task A_telegram_bot_added_on_the_page_connects_and_the_chat_it_opens_appears_on_the_channels_page()
    {
        await using var telegram = await TelegramDouble.StartAsync();
        var name = "Telegram " + Guid.NewGuid().ToString("N")[..6];
        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            Ui.AcceptDialogs(page);
            await Ui.GoToAsync(page, "connectors", "Connectors");
            await page.GetByTestId("add-connector").ClickAsync();
            await page.GetByTestId("connector-kind").SelectOptionAsync("telegram");
            await Ui.Field(page, "Name").FillAsync(name);
            await Ui.Field(page, "token").FillAsync(TelegramDouble.Token);
            await Ui.Field(page, "api_url (optional)").FillAsync(telegram.BaseUrl);
            await Ui.Field(page, "allowed_users").FillAsync(TelegramUser.Alice.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Ui.Button(page, "Add").ClickAsync();

            var row = page.GetByTestId("connectors").GetByRole(AriaRole.Row).Filter(new() { HasText = name });
            await Expect(row.GetByTestId("connector-state")).ToHaveTextAsync("connected", new() { Timeout = 30_000 });

            telegram.EnqueueMessage(TelegramChat.Private(TelegramUser.Alice), TelegramUser.Alice, "hello from telegram");
            await Ui.GoToAsync(page, "channels", "Channels");
            await Expect(page.GetByTestId("channel-connector").Filter(new() { HasText = name })).ToHaveCountAsync(1, new() { Timeout = 30_000 });
            // The chat's channel picker names the connector too, beside the channel's name.
            await Ui.GoToAsync(page, "chat", "Chat");
            var picker = page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true });
            await Expect(picker.Locator("option").Filter(new() { HasText = name })).ToHaveCountAsync(1);

            // The fixture's daemon is shared: the bot goes again.
            await Ui.GoToAsync(page, "connectors", "Connectors");
            await row.GetByRole(AriaRole.Button, new() { Name = "Remove", Exact = true }).ClickAsync();
            await Expect(row).ToHaveCountAsync(0);
        });
    }
}
