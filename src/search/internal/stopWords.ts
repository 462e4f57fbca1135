/**
 * The built-in stop word lists, one per language: the articles, pronouns, prepositions,
 * conjunctions and auxiliary verb forms of each language, in the spirit of the Snowball lists
 * that Lucene's per-language analyzers use (English is Lucene's short default set). Words are
 * written as a reader types them; the analyzer normalizes them like the text (lowercase,
 * diacritics folded), so "für" removes "fur" as well.
 */

const words = (text: string): ReadonlyArray<string> => text.trim().split(/\s+/)

/** Stop words by language name. */
export const stopWordLists = {
  english: words(`
    a an and are as at be but by for if in into is it no not of on or such that the their then there
    these they this to was will with`),
  french: words(`
    au aux avec ce ces dans de des du elle en et eux il ils je la le les leur leurs lui ma mais me même
    mes moi mon ne nos notre nous on ou où par pas pour qu que qui sa se ses son sur ta te tes toi ton
    tu un une vos votre vous c d j l à m n s t y été étée étées étés étant suis es est sommes êtes sont
    serai seras sera serons serez seront serais serait serions seriez seraient étais était étions
    étiez étaient fus fut fûmes fûtes furent sois soit soyons soyez soient fusse fût ai as avons avez
    ont aurai aura aurons aurez auront avais avait avions aviez avaient eut eûmes eurent aie ait ayons
    ayez aient ceci cela celà cet cette ici ils les leurs quel quels quelle quelles sans soi`),
  german: words(`
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch
    auf aus bei bin bis bist da damit dann der den des dem die das dass daß derselbe dieselbe dasselbe
    dein deine deinem deinen deiner dich dir doch dort du durch ein eine einem einen einer eines einig
    er es etwas euer eure euch für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich
    ihm ihn ihnen ihr ihre ihrem ihren ihrer ihres im in indem ins ist jede jedem jeden jeder jedes
    jene jenem jenen jener jenes jetzt kann kein keine keinem keinen keiner man manche mein meine
    meinem meinen meiner mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr
    sein seine seinem seinen seiner selbst sich sie sind so solche soll sollte sondern sonst über um
    und uns unser unsere unter viel vom von vor während war waren warst was weg weil weiter welche
    welchem welchen welcher welches wenn werde werden wie wieder will wir wird wirst wo wollen wollte
    würde würden zu zum zur zwar zwischen`),
  spanish: words(`
    de la que el en y a los del se las por un para con no una su al lo como más pero sus le ya o este
    sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante
    todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro otras
    otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo
    nosotros mi mis tú te ti tu tus ellas nosotras vosotros vosotras os mío mía míos mías tuyo tuya
    suyo suya nuestro nuestra vuestro vuestra esos esas estoy estás está estamos estáis están es
    son soy eres somos sois era eras éramos eran fue fueron he has ha hemos habéis han había`),
  italian: words(`
    ad al allo ai agli all agl alla alle con col coi da dal dallo dai dagli dall dagl dalla dalle di
    del dello dei degli dell degl della delle in nel nello nei negli nell negl nella nelle su sul
    sullo sui sugli sull sugl sulla sulle per tra contro io tu lui lei noi voi loro mio mia miei mie
    tuo tua tuoi tue suo sua suoi sue nostro nostra nostri nostre vostro vostra vostri vostre mi ti
    ci vi lo la li le gli ne il un uno una ma ed se perché anche come dov dove che chi cui non più
    quale quanto quanti quanta quante quello quelli quella quelle questo questi questa queste si
    tutto tutti a c e i l o ho hai ha abbiamo avete hanno sono sei è siamo siete era erano fu furono
    essere avere`),
  portuguese: words(`
    de a o que e do da em um para com não uma os no se na por mais as dos como mas ao ele das à seu
    sua ou quando muito nos já eu também só pelo pela até isso ela entre depois sem mesmo aos seus
    quem nas me esse eles você essa num nem suas meu às minha numa pelos elas qual nós lhe deles
    essas esses pelas este dele tu te vocês vos lhes meus minhas teu tua teus tuas nosso nossa
    nossos nossas dela delas esta estes estas aquele aquela aqueles aquelas isto aquilo estou está
    estamos estão estive esteve era eram fui foi fomos foram sou somos são ser tenho tem temos têm
    tinha tive teve há houve`),
  dutch: words(`
    de en van ik te dat die in een hij het niet zijn is was op aan met als voor had er maar om hem
    dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit der daar haar naar heb
    hoe heeft hebben deze u want nog zal me zij nu ge geen omdat iets worden toch al waren veel meer
    doen toen moet ben zonder kan hun dus alles onder ja eens hier wie werd altijd doch wordt wezen
    kunnen ons zelf tegen na reeds wil kon niets uw iemand geweest andere`),
  swedish: words(`
    och det att i en jag hon som han på den med var sig för så till är men ett om hade de av icke
    mig du henne då sin nu har inte hans honom skulle hennes där min man ej vid kunde något från ut
    när efter upp vi dem vara vad över än dig kan sina här ha mot alla under någon eller allt mycket
    sedan ju denna själv detta åt utan varit hur ingen mitt ni bli blev oss din dessa några deras
    blir mina samma vilken er sådan vår blivit dess inom mellan sådant varför varje vilka ditt vem
    vilket sitta sådana vart dina vars vårt våra ert era vilkas`),
  danish: words(`
    og i jeg det at en den til er som på de med han af for ikke der var mig sig men et har om vi min
    havde ham hun nu over da fra du ud sin dem os op man hans hvor eller hvad skal selv her alle vil
    blev kunne ind når være dog noget ville jo deres efter ned skulle denne end dette mit også under
    have dig anden hende mine alt meget sit sine vor mod disse hvis din nogle hos blive mange ad bliver
    hendes været thi jer sådan`),
  norwegian: words(`
    og i jeg det at en et den til er som på de med han av ikke der så var meg seg men ett har om vi
    min mitt ha hadde hun nå over da ved fra du ut sin dem oss opp man kan hans hvor eller hva skal
    selv sjøl her alle vil bli ble blitt kunne inn når være kom noen noe ville dere deres kun ja etter
    ned skulle denne for deg si sine sitt mot å meget hvorfor dette disse uten hvordan ingen din ditt
    blir samme hvilken hvilke sånn inni mellom vår hver hvem vors hvis både bare enn fordi før mange
    også slik vært båe begge siden`),
  finnish: words(`
    olla olen olet on olemme olette ovat ole oli olisi olisit olisin olisimme olisitte olisivat olit
    olin olimme olitte olivat ollut olleet en et ei emme ette eivät minä sinä hän me te he tämä tuo
    se nämä nuo ne kuka ketkä mikä mitkä joka jotka että ja jos koska kuin mutta niin sekä sillä tai
    vaan vai vaikka kanssa mukaan noin poikki yli kun nyt itse minun sinun hänen meidän teidän
    heidän tämän tuon sen näiden noiden niiden`),
  russian: words(`
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне
    было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него
    до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для
    мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот того
    потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда зачем
    всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про всего
    них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя
    такой им более всегда конечно всю между`)
} as const

/** A language with a built-in stop word list. */
export type Language = keyof typeof stopWordLists

/** The languages with a built-in list. */
export const languages = Object.keys(stopWordLists) as ReadonlyArray<Language>

/** Whether `name` is a language with a built-in list. */
export const isLanguage = (name: unknown): name is Language => typeof name === "string" && Object.hasOwn(stopWordLists, name)
